//! Shared rate-limit counters: the same SQL on both backends, written once (as the requests
//! store is), expanded in both `impl Store` blocks with the backend's pool and table prefix.

/// Expands to `count_events` and `forget_counts` for a backend whose counter pool is
/// `self.$pool` and whose tables are prefixed with `$prefix`.
macro_rules! limit_methods {
    ($db:ty, $pool:ident, $prefix:literal) => {
        async fn count_events(
            &self,
            events: &[([u8; 32], time::OffsetDateTime)],
        ) -> Result<Vec<u64>, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            if events.is_empty() {
                return Ok(Vec::new());
            }
            // A counter of an older window starts again; an event a lagging clock places in
            // an older window counts in the current one.
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {}rate_limits AS r (key, window_end, count) ",
                $prefix
            ));
            q.push_values(events, |mut b, (key, end)| {
                b.push_bind(key.to_vec()).push_bind(to_nanos(*end)).push("1");
            });
            q.push(
                " ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN excluded.window_end > r.window_end THEN 1 ELSE r.count + 1 END, \
                 window_end = CASE WHEN excluded.window_end > r.window_end THEN excluded.window_end ELSE r.window_end END \
                 RETURNING key, count",
            );
            let rows: Vec<(Vec<u8>, i64)> = q
                .build_query_as()
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| db(&e))?;
            Ok(events
                .iter()
                .map(|(key, _)| {
                    rows.iter()
                        .find(|(k, _)| k.as_slice() == key.as_slice())
                        .map_or(u64::MAX, |(_, n)| u64::try_from(*n).unwrap_or(0))
                })
                .collect())
        }

        async fn forget_counts(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
            use crate::convert::to_nanos;
            use crate::requests::db;
            let mut q: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(format!(
                "DELETE FROM {}rate_limits WHERE window_end < ",
                $prefix
            ));
            q.push_bind(to_nanos(before));
            let done = q.build().execute(&self.$pool).await.map_err(|e| db(&e))?;
            Ok(done.rows_affected())
        }
    };
}

pub(crate) use limit_methods;
