//! The audit trail's and the consent ledger's reads, written once for both backends (see
//! `access` for the convention: `?` placeholders through `$sql`, `{p}` the schema prefix).
//! Their appends stay per backend: each takes the chain's head under its own lock.

/// Expands to the reads of `AuditStore` but `audit_entries` for a backend whose data tables are in `self.$pool`,
/// named with `$prefix`.
macro_rules! audit_reads {
    ($db:ty, $pool:ident, $prefix:literal, $sql:path) => {
            async fn audit_head(&self) -> Result<Option<Seal>, StoreError> {
                let head: Option<crate::convert::SealRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT seq, hash, mac FROM {p}audit_head WHERE id = 1", p = $prefix))))
                        .fetch_optional(&self.$pool)
                        .await
                        .map_err(|e| crate::convert::backend(&e))?;
                head.map(crate::convert::seal).transpose()
            }

            async fn audit_last_seq(&self) -> Result<u64, StoreError> {
                let (n,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT MAX(seq) FROM {p}audit_entries", p = $prefix))))
                    .fetch_one(&self.$pool)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                crate::convert::seq(n.unwrap_or(0))
            }

            async fn audit_trim(&self) -> Result<Option<Seal>, StoreError> {
                let mark: Option<crate::convert::SealRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT seq, hash, mac FROM {p}audit_trim WHERE id = 1", p = $prefix))))
                        .fetch_optional(&self.$pool)
                        .await
                        .map_err(|e| crate::convert::backend(&e))?;
                mark.map(crate::convert::seal).transpose()
            }

            async fn audit_trim_point(&self, before: i64) -> Result<Option<Seal>, StoreError> {
                let point: Option<crate::convert::SealRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT c.seq, c.hash, c.mac FROM {p}audit_checkpoints c JOIN {p}audit_entries e ON e.seq = c.seq WHERE e.at <= ? ORDER BY c.seq DESC LIMIT 1",
                    p = $prefix
                ))))
                .bind(before)
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                point.map(crate::convert::seal).transpose()
            }

            async fn audit_checkpoints(&self, after: u64, through: u64) -> Result<Vec<Seal>, StoreError> {
                let rows: Vec<crate::convert::SealRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT seq, hash, mac FROM {p}audit_checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq", p = $prefix))))
                .bind(crate::convert::to_seq(after))
                .bind(crate::convert::to_seq(through))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter().map(crate::convert::seal).collect()
            }

            async fn audit_search(
                &self,
                filter: &AuditFilter,
                after: u64,
                limit: u32,
            ) -> Result<Vec<SealedEntry>, StoreError> {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "SELECT {} FROM {p}audit_entries WHERE seq > ",
                    crate::convert::AUDIT_COLUMNS, p = $prefix));
                q.push_bind(crate::convert::to_seq(after));
                // Nothing at or below a trim point is the trail's (see `AuditStore::audit_trim`).
                q.push(format!(" AND seq > COALESCE((SELECT t.seq FROM {p}audit_trim t WHERE t.id = 1), 0)", p = $prefix));
                crate::convert::push_filter(&mut q, filter);
                q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<crate::convert::AuditRow> = q
                    .build_query_as()
                    .fetch_all(&self.$pool)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter()
                    .map(crate::convert::AuditRow::into_sealed)
                    .collect()
            }

    };
}

/// Expands to `AuditStore::audit_entries` read row by row (PostgreSQL streams rows over its
/// socket to the calling task; SQLite has its own, see `SqliteStore::audit_entries`).
macro_rules! audit_entries_by_row {
    ($db:ty, $pool:ident, $prefix:literal, $sql:path) => {
            async fn audit_entries(
                &self,
                after: u64,
                through: u64,
                limit: u32,
            ) -> Result<Vec<SealedEntry>, StoreError> {
                let rows: Vec<crate::convert::AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}audit_entries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    crate::convert::AUDIT_COLUMNS, p = $prefix))))
                .bind(crate::convert::to_seq(after))
                .bind(crate::convert::to_seq(through))
                .bind(i64::from(limit))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter()
                    .map(crate::convert::AuditRow::into_sealed)
                    .collect()
            }

    };
}

/// Expands to `ConsentStore::consent_events` read row by row (see `audit_entries_by_row`).
macro_rules! consent_events_by_row {
    ($db:ty, $pool:ident, $prefix:literal, $sql:path) => {
        async fn consent_events(
            &self,
            after: u64,
            limit: u32,
        ) -> Result<Vec<SealedEvent>, StoreError> {
            let rows: Vec<crate::convert::ConsentRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}consent_events WHERE seq > ? ORDER BY seq LIMIT ?",
                    crate::convert::CONSENT_COLUMNS,
                    p = $prefix
                ))))
                .bind(crate::convert::to_seq(after))
                .bind(i64::from(limit))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            rows.into_iter()
                .map(crate::convert::ConsentRow::into_sealed)
                .collect()
        }
    };
}

/// Expands to the reads of `ConsentStore` but `consent_events` for a backend whose data tables are in `self.$pool`,
/// named with `$prefix`.
macro_rules! consent_reads {
    ($db:ty, $pool:ident, $prefix:literal, $sql:path) => {
            async fn consent_head(&self) -> Result<Option<Seal>, StoreError> {
                let head: Option<crate::convert::SealRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT seq, hash, mac FROM {p}consent_head WHERE id = 1", p = $prefix))))
                        .fetch_optional(&self.$pool)
                        .await
                        .map_err(|e| crate::convert::backend(&e))?;
                head.map(crate::convert::seal).transpose()
            }

            async fn consent_of(&self, parties: &[Party]) -> Result<Vec<SealedEvent>, StoreError> {
                let mut out = Vec::new();
                for party in parties {
                    let rows: Vec<crate::convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                        "SELECT {} FROM {p}consent_events WHERE party = ? AND party_kind = ? ORDER BY seq",
                        crate::convert::CONSENT_COLUMNS, p = $prefix))))
                    .bind(party.bytes().to_vec())
                    .bind(party.kind())
                    .fetch_all(&self.$pool)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                    for r in rows {
                        out.push(r.into_sealed()?);
                    }
                }
                out.sort_by_key(|e| e.seq);
                Ok(out)
            }

            async fn consent_links(&self, subject: SubjectId) -> Result<Vec<SealedEvent>, StoreError> {
                let rows: Vec<crate::convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}consent_events WHERE link = ? ORDER BY seq",
                    crate::convert::CONSENT_COLUMNS, p = $prefix))))
                .bind(subject.as_bytes().as_slice())
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter()
                    .map(crate::convert::ConsentRow::into_sealed)
                    .collect()
            }

            async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
                let rows: Vec<crate::convert::VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT version, must_accept, terms, recorded_at FROM {p}policy_versions ORDER BY seq", p = $prefix))))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter().map(crate::convert::policy_version).collect()
            }

            async fn consenting_parties(
                &self,
                version: &str,
                purposes: &[String],
            ) -> Result<u64, StoreError> {
                if purposes.is_empty() {
                    return Ok(0);
                }
                let mut query = sqlx::QueryBuilder::new(format!("SELECT COUNT(*) FROM (SELECT DISTINCT party_kind, party FROM {p}consent_events WHERE action IN ('grant', 'confirm') AND policy = ", p = $prefix));
                query.push_bind(version).push(" AND purpose IN (");
                let mut list = query.separated(", ");
                for purpose in purposes {
                    list.push_bind(purpose);
                }
                query.push(")) AS parties");
                let count: i64 = query
                    .build_query_scalar()
                    .fetch_one(&self.$pool)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn policy_notices(
                &self,
                version: &str,
                limit: u32,
            ) -> Result<Vec<SubjectId>, StoreError> {
                let rows: Vec<(Vec<u8>,)> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT subject FROM {p}policy_notices WHERE version = ? AND sent_at IS NULL ORDER BY subject LIMIT ?", p = $prefix))))
                .bind(version)
                .bind(i64::from(limit))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
                rows.into_iter()
                    .map(|(s,)| crate::convert::uuid(&s).map(SubjectId))
                    .collect()
            }
    };
}

pub(crate) use {audit_entries_by_row, audit_reads, consent_events_by_row, consent_reads};
