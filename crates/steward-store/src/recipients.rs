//! The generation of each recipient's webhook signing secret (GDPR Art. 19 notices): read,
//! shown once, rotated. The same SQL on both backends, written once.

/// Expands to `recipient_secret` and `claim_recipient_secret` for a backend whose data tables
/// are in `self.$data` with prefix `$prefix`.
macro_rules! recipient_methods {
    ($db:ty, $data:ident, $prefix:literal) => {
        async fn recipient_secret(
            &self,
            recipient: &str,
        ) -> Result<Option<steward_core::store::RecipientSecretState>, StoreError> {
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "SELECT generation, previous, rotated_at, shown_at FROM {}recipient_secrets WHERE recipient = ",
                $prefix
            ));
            q.push_bind(recipient.to_owned());
            let row: Option<(i64, Option<i64>, Option<i64>, Option<i64>)> = q
                .build_query_as()
                .fetch_optional(&self.$data)
                .await
                .map_err(|e| db(&e))?;
            row.map(|(generation, previous, rotated_at, shown_at)| {
                use crate::convert::from_nanos;
                let generation_of = |g: i64| {
                    u32::try_from(g).map_err(|_| {
                        StoreError::Backend("a recipient secret generation out of range".into())
                    })
                };
                Ok(steward_core::store::RecipientSecretState {
                    generation: generation_of(generation)?,
                    previous: previous.map(generation_of).transpose()?,
                    rotated_at: rotated_at.map(from_nanos).transpose()?,
                    shown_at: shown_at.map(from_nanos).transpose()?,
                })
            })
            .transpose()
        }

        async fn claim_recipient_secret(
            &self,
            recipient: &str,
            at: time::OffsetDateTime,
            rotate: Option<time::OffsetDateTime>,
        ) -> Result<Option<u32>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let overlap_from = rotate.map(to_nanos);
            let at = to_nanos(at);
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}recipient_secrets (recipient, generation) VALUES (",
                $prefix
            ));
            q.push_bind(recipient.to_owned())
                .push(", 1) ON CONFLICT (recipient) DO NOTHING");
            q.build().execute(&self.$data).await.map_err(|e| db(&e))?;
            // One statement each, so that two processes never both show one generation.
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "UPDATE {}recipient_secrets SET ",
                $prefix
            ));
            if let Some(overlap_from) = overlap_from {
                // The secret the recipient may still hold keeps signing: the current one, or,
                // when a rotation after `overlap_from` made one it may never have received,
                // the one before that. (Every right-hand side reads the row as it was.)
                q.push("previous = CASE WHEN rotated_at IS NOT NULL AND rotated_at > ")
                    .push_bind(overlap_from)
                    .push(" THEN COALESCE(previous, generation) ELSE generation END, ")
                    .push("generation = generation + 1, rotated_at = ")
                    .push_bind(at)
                    .push(", shown_at = ")
                    .push_bind(at)
                    .push(" WHERE recipient = ")
                    .push_bind(recipient.to_owned());
            } else {
                q.push("shown_at = ")
                    .push_bind(at)
                    .push(" WHERE recipient = ")
                    .push_bind(recipient.to_owned())
                    .push(" AND shown_at IS NULL");
            }
            q.push(" RETURNING generation");
            let row: Option<(i64,)> = q
                .build_query_as()
                .fetch_optional(&self.$data)
                .await
                .map_err(|e| db(&e))?;
            row.map(|(g,)| {
                u32::try_from(g).map_err(|_| {
                    StoreError::Backend("a recipient secret generation out of range".into())
                })
            })
            .transpose()
        }
    };
}

pub(crate) use recipient_methods;
