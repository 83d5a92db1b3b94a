//! The audit trail's and the consent ledger's appends, and the policy versions, written once
//! for both backends (see `access` for the convention). Each append reads the chain's head
//! under a lock that serialises writers across processes — SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's transaction-scoped advisory locks — which the backend provides as
//! `lock_audit` and `lock_consent` (called first in a transaction).

/// Expands, in a backend's module, to `append_audit_in`: the audit entries chained after the
/// head and written in a transaction the caller holds — on its own for [`Store::append_audit`],
/// or inside the write it records, so that the change and its entry are kept both or neither.
///
/// [`Store::append_audit`]: steward_core::Store::append_audit
macro_rules! chain_fns {
    ($db:ty, $p:literal, $sql:path) => {
        /// Appends `audit`'s entries to the chain in `tx`, their `{count}` filled with `n`
        /// (none when nothing was removed), and commits: a retention batch and its record,
        /// whole or not at all.
        async fn commit_counted(
            mut tx: sqlx::Transaction<'static, $db>,
            n: u64,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<(), sqlx::Error> {
            if n > 0 {
                append_audit_in(&mut tx, crate::retention::counted(audit.entries, n), audit.chain)
                    .await?;
            }
            tx.commit().await
        }

        async fn append_audit_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            entries: Vec<steward_core::audit::AuditEntry>,
            chain: &steward_core::audit::AuditChain,
        ) -> Result<steward_core::audit::Seal, sqlx::Error> {
            use crate::convert::{to_nanos, to_seq};
            lock_audit(tx).await?;
            let head: Option<crate::convert::SealRow> = sqlx::query_as(crate::subjects::stmt!(
                $sql,
                $p,
                "SELECT seq, hash, mac FROM {p}audit_head WHERE id = 1"
            ))
            .fetch_optional(&mut **tx)
            .await?;
            let head = head
                .map(crate::convert::seal)
                .transpose()
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            let batch = chain.append(head.as_ref(), entries);
            for rows in batch.entries.chunks(crate::convert::AUDIT_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {p}audit_entries (seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash) ",
                    p = $p
                ));
                q.push_values(rows, |mut b, e| {
                    b.push_bind(to_seq(e.seq))
                        .push_bind(to_nanos(e.entry.at))
                        .push_bind(e.entry.request.as_bytes().to_vec())
                        .push_bind(e.entry.actor.clone())
                        .push_bind(e.entry.role.clone())
                        .push_bind(e.entry.action.clone())
                        .push_bind(e.entry.purpose.clone())
                        .push_bind(e.entry.subject.map(|s| s.as_bytes().to_vec()))
                        .push_bind(steward_core::access::Scope::join(&e.entry.categories))
                        .push_bind(e.entry.outcome.as_str())
                        .push_bind(e.entry.code.clone())
                        .push_bind(e.entry.ticket.clone())
                        .push_bind(e.entry.flagged)
                        .push_bind(e.entry.detail.clone())
                        .push_bind(e.prev.to_vec())
                        .push_bind(e.hash.to_vec());
                });
                q.build().execute(&mut **tx).await?;
            }
            for c in &batch.checkpoints {
                sqlx::query(crate::subjects::stmt!(
                    $sql,
                    $p,
                    "INSERT INTO {p}audit_checkpoints (seq, hash, mac) VALUES (?, ?, ?)"
                ))
                .bind(to_seq(c.seq))
                .bind(c.hash.as_slice())
                .bind(c.mac.as_slice())
                .execute(&mut **tx)
                .await?;
            }
            write_head(tx, "audit_head", &batch.head).await?;
            Ok(batch.head)
        }

        /// Writes a chain's sealed head into `{p}{table}`.
        async fn write_head(
            tx: &mut sqlx::Transaction<'static, $db>,
            table: &str,
            head: &steward_core::audit::Seal,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "INSERT INTO {p}{table} (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
                p = $p
            ))))
            .bind(crate::convert::to_seq(head.seq))
            .bind(head.hash.as_slice())
            .bind(head.mac.as_slice())
            .execute(&mut **tx)
            .await
            .map(|_| ())
        }
    };
}

/// Expands to `AuditStore::append_audit` for a backend (see [`chain_fns`]).
macro_rules! audit_append {
    ($db:ty, $pool:ident, $p:literal, $sql:path) => {
        async fn append_audit(
            &self,
            entries: Vec<steward_core::audit::AuditEntry>,
            chain: &steward_core::audit::AuditChain,
        ) -> Result<steward_core::audit::Seal, StoreError> {
            use crate::convert::backend;
            let mut tx = self.begin_write().await?;
            let head = append_audit_in(&mut tx, entries, chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(head)
        }

        async fn trim_audit(
            &self,
            mark: steward_core::audit::Seal,
            entries: Vec<steward_core::audit::AuditEntry>,
            chain: &steward_core::audit::AuditChain,
        ) -> Result<u64, StoreError> {
            use crate::convert::{backend, to_seq};
            let mut tx = self.begin_write().await?;
            let gone = sqlx::query(crate::subjects::stmt!(
                $sql,
                $p,
                "DELETE FROM {p}audit_entries WHERE seq <= ?"
            ))
            .bind(to_seq(mark.seq))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?
            .rows_affected();
            sqlx::query(crate::subjects::stmt!(
                $sql,
                $p,
                "DELETE FROM {p}audit_checkpoints WHERE seq < ?"
            ))
            .bind(to_seq(mark.seq))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
            write_head(&mut tx, "audit_trim", &mark)
                .await
                .map_err(|e| backend(&e))?;
            append_audit_in(&mut tx, entries, chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(gone)
        }
    };
}

/// Expands to the writing methods of `ConsentStore` for a backend whose data tables are in
/// `self.$pool`, named with `$p`.
macro_rules! consent_writes {
    ($db:ty, $pool:ident, $p:literal, $sql:path) => {
        async fn append_consent(
            &self,
            events: Vec<steward_core::consent::ConsentEvent>,
            chain: &steward_core::consent::LedgerChain,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<Vec<steward_core::consent::SealedEvent>, StoreError> {
            use crate::convert::backend;
            let mut tx = self.begin_write().await?;
            lock_consent(&mut tx).await.map_err(|e| backend(&e))?;
            let head: Option<crate::convert::SealRow> = sqlx::query_as(crate::subjects::stmt!(
                $sql,
                $p,
                "SELECT seq, hash, mac FROM {p}consent_head WHERE id = 1"
            ))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
            let head = head.map(crate::convert::seal).transpose()?;
            let (sealed, head) = chain.append(head.as_ref(), events);
            for rows in sealed.chunks(crate::convert::CONSENT_ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {p}consent_events (seq, at, party_kind, party, action, purpose, signal, link, policy, terms, method, notice, ip, user_agent, actor, prev, hash, personal, redacted) ",
                    p = $p
                ));
                crate::convert::push_consent(&mut q, rows);
                q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
            }
            write_head(&mut tx, "consent_head", &head)
                .await
                .map_err(|e| backend(&e))?;
            if !audit.entries.is_empty() {
                append_audit_in(&mut tx, audit.entries, audit.chain)
                    .await
                    .map_err(|e| backend(&e))?;
            }
            tx.commit().await.map_err(|e| backend(&e))?;
            Ok(sealed)
        }

        async fn add_policy_version(
            &self,
            v: &steward_core::ledger::PolicyVersion,
        ) -> Result<(), StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut tx = self.begin_write().await?;
            lock_consent(&mut tx).await.map_err(|e| backend(&e))?;
            sqlx::query(crate::subjects::stmt!(
                $sql,
                $p,
                "INSERT INTO {p}policy_versions (version, must_accept, terms, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING"
            ))
            .bind(&v.version)
            .bind(v.must_accept)
            .bind(crate::convert::terms_json(v))
            .bind(to_nanos(v.recorded_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
            if v.must_accept {
                sqlx::query(crate::subjects::stmt!(
                    $sql,
                    $p,
                    "INSERT INTO {p}policy_notices (version, subject, queued_at) SELECT ?, id, ? FROM {p}subjects WHERE true ON CONFLICT DO NOTHING"
                ))
                .bind(&v.version)
                .bind(to_nanos(v.recorded_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
            }
            tx.commit().await.map_err(|e| backend(&e))
        }

        async fn mark_policy_notice(
            &self,
            version: &str,
            subject: SubjectId,
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(crate::subjects::stmt!(
                $sql,
                $p,
                "UPDATE {p}policy_notices SET sent_at = ? WHERE version = ? AND subject = ?"
            ))
            .bind(crate::convert::to_nanos(at))
            .bind(version)
            .bind(subject.as_bytes().as_slice())
            .execute(&self.$pool)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            Ok(())
        }
    };
}

pub(crate) use {audit_append, chain_fns, consent_writes};
