//! Correcting an identity: the old blind index goes and the new one comes in one transaction,
//! refused when another subject holds the new one, and a conflict when another correction
//! changed it first. Written once for both backends.

/// Expands to `replace_identity` for a backend whose data tables are in `self.$data` with
/// prefix `$prefix`.
macro_rules! identity_methods {
    ($db:ty, $data:ident, $prefix:literal) => {
        async fn replace_identity(
            &self,
            subject: steward_core::SubjectId,
            old: Option<(&str, &[u8; 32])>,
            new: &steward_core::store::SealedIdentity,
            fields: &[steward_core::store::SealedField],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<(), StoreError> {
            use crate::requests::db;
            let mut tx = self.begin_write().await?;
            // The subject first, so that two corrections of one person run one after the
            // other; each then checks that what it replaces is still there.
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}subjects SET created_at = created_at WHERE id = ",
                $prefix
            ));
            q.push_bind(subject.as_bytes().to_vec());
            if q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| db(&e))?
                .rows_affected()
                == 0
            {
                return Err(StoreError::Conflict);
            }
            let unchanged = if let Some((kind, index)) = old {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "DELETE FROM {}identities WHERE subject = ",
                    $prefix
                ));
                q.push_bind(subject.as_bytes().to_vec())
                    .push(" AND kind = ")
                    .push_bind(kind.to_owned())
                    .push(" AND idx = ")
                    .push_bind(index.to_vec());
                q.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?
                    .rows_affected()
                    == 1
            } else {
                // Adding one: only while the subject has none of this kind.
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "SELECT COUNT(*) FROM {}identities WHERE subject = ",
                    $prefix
                ));
                q.push_bind(subject.as_bytes().to_vec())
                    .push(" AND kind = ")
                    .push_bind(new.kind.clone());
                let (n,): (i64,) = q
                    .build_query_as()
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| db(&e))?;
                n == 0
            };
            if !unchanged {
                let _ = tx.rollback().await;
                return Err(StoreError::Conflict);
            }
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}identities (subject, kind, idx, sealed, purpose) VALUES (",
                $prefix
            ));
            q.push_bind(subject.as_bytes().to_vec())
                .push(", ")
                .push_bind(new.kind.clone())
                .push(", ")
                .push_bind(new.index.to_vec())
                .push(", ")
                .push_bind(new.sealed.clone())
                .push(", ")
                .push_bind(new.purpose.clone())
                .push(")");
            if let Err(e) = q.build().execute(&mut *tx).await {
                let _ = tx.rollback().await;
                return Err(if crate::convert::is_unique_violation(&e) {
                    StoreError::Duplicate {
                        kind: new.kind.clone(),
                    }
                } else {
                    db(&e)
                });
            }
            // The identity's copies stored as fields, and the entry that records it all.
            for field in fields {
                let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                    "DELETE FROM {}fields WHERE subject = ",
                    $prefix
                ));
                q.push_bind(subject.as_bytes().to_vec())
                    .push(" AND id = ")
                    .push_bind(field.id.as_bytes().to_vec());
                q.build().execute(&mut *tx).await.map_err(|e| db(&e))?;
            }
            let rows: Vec<_> = fields.iter().map(|f| (subject, f)).collect();
            insert_fields(&mut tx, $prefix, &rows)
                .await
                .map_err(|e| db(&e))?;
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| db(&e))?;
            tx.commit().await.map_err(|e| db(&e))
        }
    };
}

pub(crate) use identity_methods;
