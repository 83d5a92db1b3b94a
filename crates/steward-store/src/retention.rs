//! The retention sweeps' statements, written once for both backends and expanded in both
//! `impl Store` blocks with the backend's pool and table prefix. Every removal is a batch of
//! at most the limit asked, deleted in one transaction with its audit entry.

use steward_core::store::{Due, Event, Group, Table};

/// The consent events whose proof is no longer kept: every event of a (party, purpose) whose
/// last event is a withdrawal made at or before `before`, for one of `purposes` (those whose
/// permit a missing history denies as a withdrawal does: opt-in consents), of a party no
/// `link` joins to another (a browser's events count for the person it is linked to), recorded
/// with a digest of its personal part and not yet stripped of it. Selects `e.seq, e.personal`.
pub(crate) fn push_proofs<DB>(
    q: &mut sqlx::QueryBuilder<DB>,
    p: &str,
    before: i64,
    purposes: &[String],
) where
    DB: sqlx::Database,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(format!(
        "SELECT e.seq, e.personal FROM {p}consent_events e JOIN {p}consent_events w ON w.party_kind = e.party_kind AND w.party = e.party AND w.purpose = e.purpose WHERE w.action = 'withdraw' AND w.at <= "
    ))
    .push_bind(before)
    .push(" AND e.seq <= w.seq AND e.personal IS NOT NULL AND e.redacted IS NULL AND w.purpose IN (");
    if purposes.is_empty() {
        q.push("NULL");
    } else {
        let mut list = q.separated(", ");
        for purpose in purposes {
            list.push_bind(purpose.clone());
        }
    }
    q.push(format!(
        ") AND NOT EXISTS (SELECT 1 FROM {p}consent_events l WHERE l.party_kind = w.party_kind AND l.party = w.party AND l.purpose = w.purpose AND l.seq > w.seq) AND NOT EXISTS (SELECT 1 FROM {p}consent_events k WHERE k.action = 'link' AND ((k.party_kind = w.party_kind AND k.party = w.party) OR (w.party_kind = 's' AND k.link = w.party)))"
    ));
}

/// Pushes the condition that row `t` of `group` is `due`, with `{p}` the table prefix.
pub(crate) fn push_due<DB>(q: &mut sqlx::QueryBuilder<DB>, p: &str, group: &Group, due: &Due)
where
    DB: sqlx::Database,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    use crate::convert::to_nanos;
    match group.table {
        Table::Fields => {
            q.push("t.category = ").push_bind(group.key.clone());
        }
        Table::Identities => {
            q.push("t.kind = ").push_bind(group.key.clone());
        }
    }
    match &group.purpose {
        Some(purpose) => {
            q.push(" AND t.purpose = ").push_bind(purpose.clone());
        }
        None => {
            q.push(" AND t.purpose IS NULL");
        }
    }
    let before = to_nanos(due.before);
    match (&due.event, group.table) {
        (Event::Collected, Table::Fields) => {
            q.push(" AND t.collected_at <= ").push_bind(before);
        }
        (Event::Collected, Table::Identities) => {
            q.push(format!(
                " AND t.subject IN (SELECT id FROM {p}subjects WHERE created_at <= "
            ))
            .push_bind(before)
            .push(")");
        }
        (Event::Inactive, _) => {
            q.push(format!(
                " AND t.subject IN (SELECT id FROM {p}subjects WHERE COALESCE(active_at, created_at) <= "
            ))
            .push_bind(before)
            .push(")");
        }
        (Event::ContractEnded, _) => {
            q.push(format!(
                " AND t.subject IN (SELECT id FROM {p}subjects WHERE contract_ended_at <= "
            ))
            .push_bind(before)
            .push(")");
        }
        (Event::Closed, _) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM {p}consent_events c WHERE c.party_kind = 's' AND c.party = t.subject AND c.action = 'close' AND c.at <= "
            ))
            .push_bind(before)
            .push(format!(
                " AND NOT EXISTS (SELECT 1 FROM {p}consent_events r WHERE r.party_kind = 's' AND r.party = c.party AND r.action = 'reopen' AND r.seq > c.seq))"
            ));
        }
        (Event::Withdrawn(purpose), _) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM {p}consent_events c WHERE c.party_kind = 's' AND c.party = t.subject AND c.action = 'withdraw' AND c.purpose = "
            ))
            .push_bind(purpose.clone())
            .push(" AND c.at <= ")
            .push_bind(before)
            .push(format!(
                " AND NOT EXISTS (SELECT 1 FROM {p}consent_events g WHERE g.party_kind = 's' AND g.party = c.party AND g.purpose = c.purpose AND g.action = 'grant' AND g.seq > c.seq))"
            ));
        }
    }
    if let (Some(collected), Table::Fields) = (due.collected_before, group.table) {
        q.push(" AND t.collected_at <= ")
            .push_bind(to_nanos(collected));
    }
}

/// The finished requests last changed at or before the bound pushed next, with no job left.
pub(crate) const FINISHED: &str = "r.status IN ('completed', 'denied', 'expired') AND NOT EXISTS (SELECT 1 FROM {p}jobs j WHERE j.request = r.id AND j.done_at IS NULL) AND r.updated_at <= ";

/// A count row (`COUNT(*)`, `MIN(time)`, `MAX(time)`, times in nanoseconds) as a [`DueCount`].
pub(crate) fn due_count(
    count: i64,
    earliest: Option<i64>,
    latest: Option<i64>,
) -> Result<steward_core::store::DueCount, steward_core::StoreError> {
    use crate::convert::from_nanos;
    Ok(steward_core::store::DueCount {
        count: u64::try_from(count).unwrap_or(0),
        earliest: earliest.map(from_nanos).transpose()?,
        latest: latest.map(from_nanos).transpose()?,
    })
}

/// Fills `{count}` in each entry's detail with the count removed.
pub(crate) fn counted(
    entries: Vec<steward_core::audit::AuditEntry>,
    count: u64,
) -> Vec<steward_core::audit::AuditEntry> {
    entries
        .into_iter()
        .map(|mut e| {
            e.detail = e.detail.map(|d| d.replace("{count}", &count.to_string()));
            e
        })
        .collect()
}

/// Expands to `RetentionStore`'s methods for a backend whose data tables are in `self.$pool`,
/// named with `$p`.
macro_rules! retention_methods {
    ($db:ty, $pool:ident, $p:literal) => {
        async fn retention_groups(&self) -> Result<Vec<steward_core::store::Group>, StoreError> {
            use crate::requests::db;
            use steward_core::store::{Group, Table};
            let mut groups = Vec::new();
            for (table, sql) in [
                (Table::Fields, format!("SELECT DISTINCT purpose, category FROM {}fields", $p)),
                (Table::Identities, format!("SELECT DISTINCT purpose, kind FROM {}identities", $p)),
            ] {
                let rows: Vec<(Option<String>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.$pool)
                    .await
                    .map_err(|e| db(&e))?;
                groups.extend(rows.into_iter().map(|(purpose, key)| Group { table, purpose, key }));
            }
            Ok(groups)
        }

        async fn count_due(
            &self,
            group: &steward_core::store::Group,
            due: &steward_core::store::Due,
        ) -> Result<steward_core::store::DueCount, StoreError> {
            use crate::requests::db;
            let from = match group.table {
                steward_core::store::Table::Fields => format!(
                    "SELECT COUNT(*), MIN(t.collected_at), MAX(t.collected_at) FROM {}fields t WHERE ",
                    $p
                ),
                steward_core::store::Table::Identities => format!(
                    "SELECT COUNT(*), MIN(s.created_at), MAX(s.created_at) FROM {p}identities t JOIN {p}subjects s ON s.id = t.subject WHERE ",
                    p = $p
                ),
            };
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(from);
            crate::retention::push_due(&mut q, $p, group, due);
            let (count, earliest, latest): (i64, Option<i64>, Option<i64>) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            crate::retention::due_count(count, earliest, latest)
        }

        async fn remove_due(
            &self,
            group: &steward_core::store::Group,
            due: &steward_core::store::Due,
            limit: u32,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<steward_core::store::Removed, StoreError> {
            use crate::requests::db;
            // The batch is chosen, deleted and its emptied people found inside the database,
            // in one transaction: no row travels to Steward but the people left with nothing.
            let (columns, table, key) = match group.table {
                steward_core::store::Table::Fields => ("id, subject", "fields", "id"),
                steward_core::store::Table::Identities => {
                    ("kind, idx, subject", "identities", "(kind, idx)")
                }
            };
            let mut tx = self.begin_write().await?;
            let run = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
            run("DROP TABLE IF EXISTS retention_batch".to_owned())
                .execute(&mut *tx)
                .await
                .map_err(|e| db(&e))?;
            run(format!(
                "CREATE TEMP TABLE retention_batch AS SELECT {columns} FROM {}{table} WHERE 1 = 0",
                $p
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| db(&e))?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO retention_batch SELECT {} FROM {}{table} t WHERE ",
                columns
                    .split(", ")
                    .map(|c| format!("t.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                $p
            ));
            crate::retention::push_due(&mut q, $p, group, due);
            q.push(" LIMIT ").push_bind(i64::from(limit));
            let count = q
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db(&e))?
                .rows_affected();
            if count == 0 {
                tx.rollback().await.map_err(|e| db(&e))?;
                return Ok(steward_core::store::Removed::default());
            }
            run(format!(
                "DELETE FROM {p}{table} WHERE {key} IN (SELECT {key_columns} FROM retention_batch)",
                p = $p,
                key_columns = key.trim_matches(['(', ')'])
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| db(&e))?;
            let emptied: Vec<(Vec<u8>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT b.subject FROM retention_batch b JOIN {p}subjects s ON s.id = b.subject WHERE NOT EXISTS (SELECT 1 FROM {p}identities i WHERE i.subject = b.subject) AND NOT EXISTS (SELECT 1 FROM {p}fields f WHERE f.subject = b.subject)",
                p = $p
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db(&e))?;
            run("DROP TABLE retention_batch".to_owned())
                .execute(&mut *tx)
                .await
                .map_err(|e| db(&e))?;
            commit_counted(tx, count, audit).await.map_err(|e| db(&e))?;
            let mut subjects = emptied
                .into_iter()
                .map(|(s,)| crate::convert::uuid(&s).map(SubjectId))
                .collect::<Result<Vec<_>, _>>()?;
            subjects.sort_unstable_by_key(|s| *s.as_bytes());
            Ok(steward_core::store::Removed { count, subjects })
        }

        async fn record_activity(
            &self,
            subject: SubjectId,
            at: time::OffsetDateTime,
            contract_ended: Option<bool>,
        ) -> Result<bool, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> =
                sqlx::QueryBuilder::new(format!("UPDATE {}subjects SET active_at = ", $p));
            q.push_bind(to_nanos(at));
            match contract_ended {
                None => {}
                Some(true) => {
                    q.push(", contract_ended_at = ").push_bind(to_nanos(at));
                }
                Some(false) => {
                    q.push(", contract_ended_at = NULL");
                }
            }
            q.push(" WHERE id = ").push_bind(subject.as_bytes().to_vec());
            let done = q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(done.rows_affected() > 0)
        }

        async fn count_finished_requests(
            &self,
            before: time::OffsetDateTime,
            with_contact: bool,
        ) -> Result<steward_core::store::DueCount, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT COUNT(*), MIN(r.updated_at), MAX(r.updated_at) FROM {p}requests r WHERE {}",
                crate::retention::FINISHED.replace("{p}", $p),
                p = $p
            ));
            q.push_bind(to_nanos(before));
            if with_contact {
                q.push(" AND length(r.contact) > 0");
            }
            let (count, earliest, latest): (i64, Option<i64>, Option<i64>) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            crate::retention::due_count(count, earliest, latest)
        }

        async fn count_consent_proofs(
            &self,
            before: time::OffsetDateTime,
            purposes: &[String],
        ) -> Result<steward_core::store::DueCount, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT COUNT(*), MIN(c.at), MAX(c.at) FROM {p}consent_events c WHERE c.seq IN (SELECT d.seq FROM (",
                p = $p
            ));
            crate::retention::push_proofs(&mut q, $p, to_nanos(before), purposes);
            q.push(") d)");
            let (count, earliest, latest): (i64, Option<i64>, Option<i64>) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            crate::retention::due_count(count, earliest, latest)
        }

        async fn consent_proofs_due(
            &self,
            before: time::OffsetDateTime,
            purposes: &[String],
            limit: u32,
        ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new("");
            crate::retention::push_proofs(&mut q, $p, to_nanos(before), purposes);
            q.push(" ORDER BY e.seq LIMIT ").push_bind(i64::from(limit));
            let rows: Vec<(i64, Vec<u8>)> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            let mut out = Vec::with_capacity(rows.len());
            for (seq, personal) in rows {
                let Ok(personal) = <[u8; 32]>::try_from(personal) else {
                    continue;
                };
                out.push((crate::convert::seq(seq)?, personal));
            }
            out.dedup_by_key(|(seq, _)| *seq);
            Ok(out)
        }

        async fn redact_consent(
            &self,
            seals: &[(u64, [u8; 32])],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<u64, StoreError> {
            use crate::convert::to_seq;
            use crate::requests::db;
            let mut tx = self.begin_write().await?;
            let mut n = 0;
            for (seq, seal) in seals {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "UPDATE {p}consent_events SET party_kind = 'd', ip = NULL, user_agent = NULL, party = ",
                    p = $p
                ));
                q.push_bind(steward_core::consent::REDACTED.bytes().to_vec())
                    .push(", redacted = ")
                    .push_bind(seal.to_vec())
                    .push(" WHERE personal IS NOT NULL AND redacted IS NULL AND seq = ")
                    .push_bind(to_seq(*seq));
                n += q.build().execute(&mut *tx).await.map_err(|e| db(&e))?.rows_affected();
            }
            commit_counted(tx, n, audit).await.map_err(|e| db(&e))?;
            Ok(n)
        }

        async fn forget_request_contacts(
            &self,
            before: time::OffsetDateTime,
            limit: u32,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<u64, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {p}requests SET payload = NULL, revision = revision + 1, contact = ",
                p = $p
            ));
            q.push_bind(Vec::<u8>::new()).push(format!(
                " WHERE id IN (SELECT r.id FROM {p}requests r WHERE {}",
                crate::retention::FINISHED.replace("{p}", $p),
                p = $p
            ));
            q.push_bind(to_nanos(before))
                .push(" AND length(r.contact) > 0 LIMIT ")
                .push_bind(i64::from(limit))
                .push(")");
            let mut tx = self.begin_write().await?;
            let n = q.build().execute(&mut *tx).await.map_err(|e| db(&e))?.rows_affected();
            commit_counted(tx, n, audit).await.map_err(|e| db(&e))?;
            Ok(n)
        }

        async fn delete_finished_requests(
            &self,
            before: time::OffsetDateTime,
            limit: u32,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<u64, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut tx = self.begin_write().await?;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT r.id FROM {p}requests r WHERE {}",
                crate::retention::FINISHED.replace("{p}", $p),
                p = $p
            ));
            q.push_bind(to_nanos(before))
                .push(" LIMIT ")
                .push_bind(i64::from(limit));
            let ids: Vec<(Vec<u8>,)> = q
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| db(&e))?;
            if ids.is_empty() {
                return Ok(0);
            }
            for table in ["jobs WHERE request", "requests WHERE id"] {
                for chunk in ids.chunks(500) {
                    let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                        "DELETE FROM {}{table} IN (",
                        $p
                    ));
                    let mut list = q.separated(", ");
                    for (id,) in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await.map_err(|e| db(&e))?;
                }
            }
            let n = ids.len() as u64;
            commit_counted(tx, n, audit).await.map_err(|e| db(&e))?;
            Ok(n)
        }

        async fn count_held_due(
            &self,
            before: time::OffsetDateTime,
        ) -> Result<steward_core::store::DueCount, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT COUNT(*), MIN(collected_at), MAX(collected_at) FROM {}held_fields WHERE hold_until IS NOT NULL AND hold_until < ",
                $p
            ));
            q.push_bind(to_nanos(before));
            let (count, earliest, latest): (i64, Option<i64>, Option<i64>) = q
                .build_query_as()
                .fetch_one(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            crate::retention::due_count(count, earliest, latest)
        }

        async fn schedule_sweep(&self, run_at: time::OffsetDateTime) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}jobs (kind, request, run_at, attempts, payload) VALUES ('retention', NULL, ",
                $p
            ));
            q.push_bind(to_nanos(run_at)).push(
                ", 0, '{}') ON CONFLICT (kind) WHERE kind = 'retention' AND done_at IS NULL DO NOTHING",
            );
            q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(())
        }

        async fn claim_sweep(
            &self,
            now: time::OffsetDateTime,
            lease: time::OffsetDateTime,
            any_time: bool,
        ) -> Result<Option<steward_core::store::Job>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::{JOB_COLUMNS, JobRow, db};
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}jobs SET attempts = attempts + 1, lease_until = ",
                $p
            ));
            q.push_bind(to_nanos(lease)).push(
                " WHERE kind = 'retention' AND done_at IS NULL AND (lease_until IS NULL OR lease_until <= ",
            );
            q.push_bind(to_nanos(now)).push(")");
            if !any_time {
                q.push(" AND run_at <= ").push_bind(to_nanos(now));
            }
            q.push(format!(" RETURNING {JOB_COLUMNS}"));
            let row: Option<JobRow> = q
                .build_query_as()
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            row.map(JobRow::into_job).transpose()
        }

        async fn release_sweep(&self, id: i64) -> Result<(), StoreError> {
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}jobs SET lease_until = NULL WHERE id = ",
                $p
            ));
            q.push_bind(id);
            q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(())
        }

        async fn renew_sweep(&self, id: i64, until: time::OffsetDateTime) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> =
                sqlx::QueryBuilder::new(format!("UPDATE {}jobs SET lease_until = ", $p));
            q.push_bind(to_nanos(until)).push(" WHERE id = ").push_bind(id);
            q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(())
        }
    };
}

pub(crate) use retention_methods;
