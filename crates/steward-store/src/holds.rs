//! Legal holds after an erasure: finding a held person by a kept blind index, and ending holds
//! whose period is over. The same SQL on both backends, written once, expanded in both
//! `impl Store` blocks with the backend's pools and table prefixes.

/// Expands to `find_held_subject` and `end_holds` for a backend whose data tables are in
/// `self.$data` with prefix `$data_prefix` and whose key tables are in `self.$keys` with
/// prefix `$keys_prefix`.
macro_rules! hold_methods {
    ($db:ty, $data:ident, $data_prefix:literal, $keys:ident, $keys_prefix:literal) => {
        async fn find_held_subject(
            &self,
            kind: &str,
            index: &[u8; 32],
        ) -> Result<Option<steward_core::SubjectId>, StoreError> {
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT subject FROM {}held_identities WHERE kind = ",
                $data_prefix
            ));
            q.push_bind(kind.to_owned())
                .push(" AND idx = ")
                .push_bind(index.to_vec())
                .push(" ORDER BY subject DESC LIMIT 1");
            let row: Option<(Vec<u8>,)> = q
                .build_query_as()
                .fetch_optional(&self.$data)
                .await
                .map_err(|e| db(&e))?;
            row.map(|(id,)| crate::convert::uuid(&id).map(steward_core::SubjectId))
                .transpose()
        }

        async fn end_holds(
            &self,
            before: time::OffsetDateTime,
            limit: u32,
            audit: steward_core::store::Audited<'_>,
        ) -> Result<steward_core::store::HoldsEnded, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            // The subjects with a field whose hold is over, a batch at a time.
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT DISTINCT subject FROM {}held_fields WHERE hold_until IS NOT NULL AND hold_until < ",
                $data_prefix
            ));
            q.push_bind(to_nanos(before))
                .push(" LIMIT ")
                .push_bind(i64::from(limit));
            let due: Vec<(Vec<u8>,)> = q
                .build_query_as()
                .fetch_all(&self.$data)
                .await
                .map_err(|e| db(&e))?;
            let mut ended = steward_core::store::HoldsEnded::default();
            let mut emptied: Vec<Vec<u8>> = Vec::new();
            let mut tx = self.begin_write().await?;
            let mut entries = Vec::new();
            for (subject,) in &due {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "DELETE FROM {}held_fields WHERE hold_until IS NOT NULL AND hold_until < ",
                    $data_prefix
                ));
                q.push_bind(to_nanos(before))
                    .push(" AND subject = ")
                    .push_bind(subject.clone());
                let deleted = q
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?
                    .rows_affected();
                ended.fields += deleted;
                if deleted > 0
                    && let Some(template) = audit.entries.first()
                {
                    let mut entry = template.clone();
                    entry.subject = Some(crate::convert::uuid(subject).map(steward_core::SubjectId)?);
                    entries.push(entry);
                }
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "SELECT COUNT(*) FROM {}held_fields WHERE subject = ",
                    $data_prefix
                ));
                q.push_bind(subject.clone());
                let (left,): (i64,) = q
                    .build_query_as()
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?;
                if left == 0 {
                    let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                        "DELETE FROM {}held_identities WHERE subject = ",
                        $data_prefix
                    ));
                    q.push_bind(subject.clone());
                    q.build().execute(&mut *tx).await.map_err(|e| db(&e))?;
                    emptied.push(subject.clone());
                }
            }
            // Each subject's held data destroyed is recorded in the same transaction.
            if !entries.is_empty() {
                append_audit_in(&mut tx, entries, audit.chain)
                    .await
                    .map_err(|e| db(&e))?;
            }
            tx.commit().await.map_err(|e| db(&e))?;
            // With nothing left under hold, the hold key goes too (crypto-shredding the rest of
            // any copy). A failure here leaves a key to nothing, removed on the next run.
            for subject in &emptied {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "DELETE FROM {}hold_keys WHERE subject = ",
                    $keys_prefix
                ));
                q.push_bind(subject.clone());
                q.build().execute(&self.$keys).await.map_err(|e| db(&e))?;
                ended.subjects.push(crate::convert::uuid(subject).map(steward_core::SubjectId)?);
            }
            if !emptied.is_empty() {
                self.forget_erased_keys().await;
            }
            Ok(ended)
        }
    };
}

pub(crate) use hold_methods;
