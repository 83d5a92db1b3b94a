//! API keys, staff accounts and their sessions: the same SQL on both backends, written once
//! with `?` placeholders and `{p}` for the schema prefix, expanded in both `impl Store` blocks
//! with the backend's pool, prefix and placeholder style ([`sqlite`], [`postgres`]).

/// The statement as SQLite takes it: `?` placeholders as written.
pub(crate) fn sqlite(text: &str) -> String {
    text.to_owned()
}

/// The statement as PostgreSQL takes it: each `?` numbered in turn (`$1`, `$2` …). Steward's
/// statements hold no `?` inside quotes.
pub(crate) fn postgres(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Expands to the API-key, staff and session methods of `Store` for a backend whose data
/// tables are in `self.$pool`, named with `$prefix`, its statements passed through `$sql`.
macro_rules! access_methods {
    ($pool:ident, $prefix:literal, $sql:path) => {
        async fn insert_api_key(
            &self,
            key: &steward_core::api_key::ApiKeyRecord,
        ) -> Result<(), StoreError> {
            use crate::convert::{backend, to_nanos};
            let (purposes, categories, operations) = crate::convert::scope_columns(&key.scope);
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "INSERT INTO {p}api_keys (prefix, hash, role, name, created_at, purposes, categories, operations, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                p = $prefix
            ))))
            .bind(&key.prefix)
            .bind(key.hash.as_slice())
            .bind(key.role.as_str())
            .bind(&key.name)
            .bind(to_nanos(key.created_at))
            .bind(purposes)
            .bind(categories)
            .bind(operations)
            .bind(key.expires_at.map(to_nanos))
            .execute(&self.$pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
        }

        async fn find_api_key(
            &self,
            prefix: &str,
        ) -> Result<Option<steward_core::api_key::ApiKeyRecord>, StoreError> {
            let row: Option<crate::convert::ApiKeyRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}api_keys WHERE prefix = ?",
                    crate::convert::API_KEY_COLUMNS,
                    p = $prefix
                ))))
                .bind(prefix)
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            row.map(crate::convert::api_key).transpose()
        }

        async fn list_api_keys(
            &self,
        ) -> Result<Vec<steward_core::api_key::ApiKeyRecord>, StoreError> {
            let rows: Vec<crate::convert::ApiKeyRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}api_keys ORDER BY created_at, prefix",
                    crate::convert::API_KEY_COLUMNS,
                    p = $prefix
                ))))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            rows.into_iter().map(crate::convert::api_key).collect()
        }

        async fn revoke_api_key(
            &self,
            prefix: &str,
            at: time::OffsetDateTime,
        ) -> Result<bool, StoreError> {
            // Told before (so a failure revokes nothing) and after (so a record read between
            // the two is not kept): see `api_keys_generation`.
            self.api_keys_changed()?;
            let done = sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "UPDATE {p}api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
                p = $prefix
            ))))
            .bind(crate::convert::to_nanos(at))
            .bind(prefix)
            .execute(&self.$pool)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            let _ = self.api_keys_changed();
            Ok(done.rows_affected() == 1)
        }

        fn api_keys_generation(&self) -> Option<u64> {
            self.api_keys_seen()
        }

        async fn insert_staff(
            &self,
            s: &steward_core::staff::StaffRecord,
        ) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            let done = sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "INSERT INTO {p}staff (username, role, password_hash, totp, totp_last_step, failed, locked_until, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                p = $prefix
            ))))
            .bind(&s.username)
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(s.disabled)
            .bind(to_nanos(s.created_at))
            .execute(&self.$pool)
            .await;
            match done {
                Ok(_) => Ok(()),
                Err(e) if crate::convert::is_unique_violation(&e) => Err(StoreError::Duplicate {
                    kind: "username".to_owned(),
                }),
                Err(e) => Err(crate::convert::backend(&e)),
            }
        }

        async fn find_staff(
            &self,
            username: &str,
        ) -> Result<Option<steward_core::staff::StaffRecord>, StoreError> {
            let row: Option<crate::convert::StaffRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}staff WHERE username = ?",
                    crate::convert::STAFF_COLUMNS,
                    p = $prefix
                ))))
                .bind(username)
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            row.map(crate::convert::staff).transpose()
        }

        async fn list_staff(&self) -> Result<Vec<steward_core::staff::StaffRecord>, StoreError> {
            let rows: Vec<crate::convert::StaffRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT {} FROM {p}staff ORDER BY username",
                    crate::convert::STAFF_COLUMNS,
                    p = $prefix
                ))))
                .fetch_all(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            rows.into_iter().map(crate::convert::staff).collect()
        }

        async fn update_staff(
            &self,
            s: &steward_core::staff::StaffRecord,
        ) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "UPDATE {p}staff SET role = ?, password_hash = ?, totp = ?, totp_last_step = ?, failed = ?, locked_until = ?, disabled = ? WHERE username = ?",
                p = $prefix
            ))))
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(s.disabled)
            .bind(&s.username)
            .execute(&self.$pool)
            .await
            .map(|_| ())
            .map_err(|e| crate::convert::backend(&e))
        }

        async fn insert_session(
            &self,
            s: &steward_core::staff::SessionRecord,
        ) -> Result<(), StoreError> {
            use crate::convert::to_nanos;
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "INSERT INTO {p}staff_sessions (hash, username, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                p = $prefix
            ))))
            .bind(s.hash.as_slice())
            .bind(&s.username)
            .bind(to_nanos(s.created_at))
            .bind(to_nanos(s.expires_at))
            .bind(to_nanos(s.last_seen))
            .execute(&self.$pool)
            .await
            .map(|_| ())
            .map_err(|e| crate::convert::backend(&e))
        }

        async fn find_session(
            &self,
            hash: &[u8; 32],
        ) -> Result<Option<steward_core::staff::SessionRecord>, StoreError> {
            let row: Option<crate::convert::SessionRow> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT hash, username, created_at, expires_at, last_seen FROM {p}staff_sessions WHERE hash = ?",
                    p = $prefix
                ))))
                .bind(hash.as_slice())
                .fetch_optional(&self.$pool)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            row.map(crate::convert::session).transpose()
        }

        async fn touch_session(
            &self,
            hash: &[u8; 32],
            at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "UPDATE {p}staff_sessions SET last_seen = ? WHERE hash = ?",
                p = $prefix
            ))))
            .bind(crate::convert::to_nanos(at))
            .bind(hash.as_slice())
            .execute(&self.$pool)
            .await
            .map(|_| ())
            .map_err(|e| crate::convert::backend(&e))
        }

        async fn delete_session(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
            let done = sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "DELETE FROM {p}staff_sessions WHERE hash = ?",
                p = $prefix
            ))))
            .bind(hash.as_slice())
            .execute(&self.$pool)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            Ok(done.rows_affected() > 0)
        }

        async fn delete_sessions_of(&self, username: &str) -> Result<u64, StoreError> {
            let done = sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "DELETE FROM {p}staff_sessions WHERE username = ?",
                p = $prefix
            ))))
            .bind(username)
            .execute(&self.$pool)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            Ok(done.rows_affected())
        }
    };
}

pub(crate) use access_methods;

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_numbers_each_placeholder_in_turn() {
        assert_eq!(
            super::postgres("UPDATE t SET a = ?, b = ? WHERE c = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
        assert_eq!(super::sqlite("a = ?"), "a = ?");
    }
}
