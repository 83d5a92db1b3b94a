//! The key store's own statements — the root secrets and the re-wrapping of subject and hold
//! keys under a new master key — written once for both backends (see `access` for the
//! convention), expanded with the key store's pool (`keys.db`, or the `steward_keys` schema).

/// Expands to `root`, `put_root`, `keys_to_rewrap`, `count_keys_to_rewrap`, `rewrap_keys` and
/// `replace_root` for a backend whose key tables are in `self.$keys`, named with `$prefix`.
macro_rules! key_methods {
    ($keys:ident, $prefix:literal, $sql:path) => {
        async fn root(&self, name: &str) -> Result<Option<WrappedKey>, StoreError> {
            let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                "SELECT kek_version, wrapped FROM {p}roots WHERE name = ?",
                p = $prefix
            ))))
            .bind(name)
            .fetch_optional(&self.$keys)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            row.map(|(v, bytes)| {
                Ok(WrappedKey {
                    kek_version: crate::convert::version(v)?,
                    bytes,
                })
            })
            .transpose()
        }

        async fn put_root(&self, name: &str, key: &WrappedKey) -> Result<WrappedKey, StoreError> {
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "INSERT INTO {p}roots (name, kek_version, wrapped) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                p = $prefix
            ))))
            .bind(name)
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .execute(&self.$keys)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            self.root(name).await?.ok_or_else(|| {
                StoreError::Backend("the root key vanished after it was written".to_owned())
            })
        }

        async fn keys_to_rewrap(
            &self,
            table: KeyTable,
            version: u32,
            limit: u32,
        ) -> Result<Vec<(SubjectId, WrappedKey)>, StoreError> {
            let rows: Vec<(Vec<u8>, i64, Vec<u8>)> =
                sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                    "SELECT subject, kek_version, wrapped FROM {p}{} WHERE kek_version < ? ORDER BY subject LIMIT ?",
                    table.table(),
                    p = $prefix
                ))))
                .bind(i64::from(version))
                .bind(i64::from(limit))
                .fetch_all(&self.$keys)
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            rows.into_iter()
                .map(|(id, v, bytes)| {
                    Ok((
                        SubjectId(crate::convert::uuid(&id)?),
                        WrappedKey {
                            kek_version: crate::convert::version(v)?,
                            bytes,
                        },
                    ))
                })
                .collect()
        }

        async fn count_keys_to_rewrap(
            &self,
            table: KeyTable,
            version: u32,
        ) -> Result<u64, StoreError> {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!(
                "SELECT COUNT(*) FROM {p}{} WHERE kek_version < ?",
                table.table(),
                p = $prefix
            ))))
            .bind(i64::from(version))
            .fetch_one(&self.$keys)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        async fn rewrap_keys(
            &self,
            table: KeyTable,
            keys: &[(SubjectId, WrappedKey)],
        ) -> Result<(), StoreError> {
            let statement = $sql(&format!(
                "UPDATE {p}{} SET kek_version = ?, wrapped = ? WHERE subject = ?",
                table.table(),
                p = $prefix
            ));
            let mut tx = self
                .$keys
                .begin()
                .await
                .map_err(|e| crate::convert::backend(&e))?;
            for (id, key) in keys {
                sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                    .bind(i64::from(key.kek_version))
                    .bind(&key.bytes)
                    .bind(id.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
            }
            tx.commit().await.map_err(|e| crate::convert::backend(&e))
        }

        async fn replace_root(&self, name: &str, key: &WrappedKey) -> Result<(), StoreError> {
            sqlx::query(sqlx::AssertSqlSafe($sql(&format!(
                "UPDATE {p}roots SET kek_version = ?, wrapped = ? WHERE name = ?",
                p = $prefix
            ))))
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .bind(name)
            .execute(&self.$keys)
            .await
            .map(|_| ())
            .map_err(|e| crate::convert::backend(&e))
        }
    };
}

pub(crate) use key_methods;
