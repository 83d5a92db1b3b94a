//! PostgreSQL, for scale: data in the `steward` schema, wrapped keys in `steward_keys` (back
//! them up separately), each operation one transaction across both.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use steward_core::api_key::ApiKeyRecord;
use steward_core::store::KeyTable;
use steward_core::store::{Hold, SealedField, SealedIdentity, SubjectRecord};
use steward_core::{Store, StoreError, SubjectId};
use steward_crypto::WrappedKey;

use crate::convert::{self, FieldRow, backend, from_nanos, is_unique_violation, to_nanos};

/// PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating PostgreSQL: {e}")))?;
        Ok(Self { pool })
    }

    /// Closes the pool.
    pub async fn close(self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| backend(&e))
    }
}

async fn insert_field(
    tx: &mut Transaction<'static, Postgres>,
    subject: &SubjectId,
    f: &SealedField,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO steward.fields (id, subject, category, purpose, source, collected_at, sealed) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(f.id.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .bind(&f.category)
        .bind(&f.purpose)
        .bind(&f.source)
        .bind(to_nanos(f.collected_at))
        .bind(&f.sealed)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

impl Store for PgStore {
    async fn root(&self, name: &str) -> Result<Option<WrappedKey>, StoreError> {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT kek_version, wrapped FROM steward_keys.roots WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        row.map(|(v, bytes)| {
            Ok(WrappedKey {
                kek_version: convert::version(v)?,
                bytes,
            })
        })
        .transpose()
    }

    async fn put_root(&self, name: &str, key: &WrappedKey) -> Result<WrappedKey, StoreError> {
        sqlx::query("INSERT INTO steward_keys.roots (name, kek_version, wrapped) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .execute(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        self.root(name).await?.ok_or_else(|| {
            StoreError::Backend("the root key vanished after it was written".to_owned())
        })
    }

    async fn insert_subjects(&self, subjects: &[SubjectRecord]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let written: Result<(), sqlx::Error> = async {
            for s in subjects {
                sqlx::query("INSERT INTO steward.subjects (id, created_at) VALUES ($1, $2)")
                    .bind(s.id.as_bytes().as_slice())
                    .bind(to_nanos(s.created_at))
                    .execute(&mut *tx)
                    .await?;
                for i in &s.identities {
                    sqlx::query("INSERT INTO steward.identities (subject, kind, idx, sealed) VALUES ($1, $2, $3, $4)")
                        .bind(s.id.as_bytes().as_slice())
                        .bind(&i.kind)
                        .bind(i.index.as_slice())
                        .bind(&i.sealed)
                        .execute(&mut *tx)
                        .await?;
                }
                for f in &s.fields {
                    insert_field(&mut tx, &s.id, f).await?;
                }
                sqlx::query("INSERT INTO steward_keys.subject_keys (subject, kek_version, wrapped) VALUES ($1, $2, $3)")
                    .bind(s.id.as_bytes().as_slice())
                    .bind(i64::from(s.key.kek_version))
                    .bind(&s.key.bytes)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => tx.commit().await.map_err(|e| backend(&e)),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(if is_unique_violation(&e) {
                    StoreError::Duplicate {
                        kind: convert::duplicate_kind(self, subjects).await,
                    }
                } else {
                    backend(&e)
                })
            }
        }
    }

    async fn find_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> Result<Option<SubjectId>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT subject FROM steward.identities WHERE kind = $1 AND idx = $2")
                .bind(kind)
                .bind(index.as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        row.map(|(id,)| convert::uuid(&id).map(SubjectId))
            .transpose()
    }

    async fn load_subject(&self, id: SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
        let key: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT kek_version, wrapped FROM steward_keys.subject_keys WHERE subject = $1",
        )
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        let subject: Option<(i64,)> =
            sqlx::query_as("SELECT created_at FROM steward.subjects WHERE id = $1")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        let (Some((kek_version, wrapped)), Some((created_at,))) = (key, subject) else {
            return Ok(None);
        };
        let identities = sqlx::query("SELECT kind, idx, sealed FROM steward.identities WHERE subject = $1 ORDER BY kind, idx")
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(&e))?
            .into_iter()
            .map(|row| {
                Ok(SealedIdentity {
                    kind: row.try_get("kind").map_err(|e| backend(&e))?,
                    index: convert::index(&row.try_get::<Vec<u8>, _>("idx").map_err(|e| backend(&e))?)?,
                    sealed: row.try_get("sealed").map_err(|e| backend(&e))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let fields = sqlx::query_as::<_, FieldRow>("SELECT id, category, purpose, source, collected_at, sealed FROM steward.fields WHERE subject = $1 ORDER BY collected_at, id")
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(&e))?
            .into_iter()
            .map(convert::field)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SubjectRecord {
            id,
            created_at: from_nanos(created_at)?,
            key: WrappedKey {
                kek_version: convert::version(kek_version)?,
                bytes: wrapped,
            },
            identities,
            fields,
        }))
    }

    async fn put_field(&self, subject: SubjectId, field: &SealedField) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM steward.fields WHERE id = $1 AND subject = $2")
            .bind(field.id.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        insert_field(&mut tx, &subject, field)
            .await
            .map_err(|e| backend(&e))?;
        tx.commit().await.map_err(|e| backend(&e))
    }

    async fn erase_subject(&self, id: SubjectId, hold: Option<&Hold>) -> Result<bool, StoreError> {
        let subject = id.as_bytes().as_slice();
        // 1. Crypto-shredding: the key goes first (and the hold key, if any, is written).
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM steward_keys.subject_keys WHERE subject = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        if deleted.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        if let Some(hold) = hold {
            sqlx::query("INSERT INTO steward_keys.hold_keys (subject, kek_version, wrapped) VALUES ($1, $2, $3) ON CONFLICT (subject) DO UPDATE SET kek_version = EXCLUDED.kek_version, wrapped = EXCLUDED.wrapped")
                .bind(subject)
                .bind(i64::from(hold.key.kek_version))
                .bind(&hold.key.bytes)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        }
        // 2. The rows, in the same transaction.
        sqlx::query("DELETE FROM steward.subjects WHERE id = $1")
            .bind(subject)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        for held in hold.map_or(&[][..], |h| &h.fields) {
            let f = &held.field;
            sqlx::query("INSERT INTO steward.held_fields (id, subject, category, purpose, source, collected_at, sealed, reason, hold_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(f.id.as_bytes().as_slice())
                .bind(subject)
                .bind(&f.category)
                .bind(&f.purpose)
                .bind(&f.source)
                .bind(to_nanos(f.collected_at))
                .bind(&f.sealed)
                .bind(&held.reason)
                .bind(held.until.map(to_nanos))
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        }
        tx.commit().await.map_err(|e| backend(&e))?;
        Ok(true)
    }

    async fn held(&self, id: SubjectId) -> Result<Option<Hold>, StoreError> {
        let key: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT kek_version, wrapped FROM steward_keys.hold_keys WHERE subject = $1",
        )
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        let Some((kek_version, wrapped)) = key else {
            return Ok(None);
        };
        let rows: Vec<convert::HeldRow> =
            sqlx::query_as("SELECT id, category, purpose, source, collected_at, sealed, reason, hold_until FROM steward.held_fields WHERE subject = $1 ORDER BY collected_at, id")
                .bind(id.as_bytes().as_slice())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        let fields = rows
            .into_iter()
            .map(convert::held_field)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Hold {
            key: WrappedKey {
                kek_version: convert::version(kek_version)?,
                bytes: wrapped,
            },
            fields,
        }))
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO steward.api_keys (prefix, hash, role, name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.prefix)
            .bind(key.hash.as_slice())
            .bind(key.role.as_str())
            .bind(&key.name)
            .bind(to_nanos(key.created_at))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<convert::ApiKeyRow> = sqlx::query_as("SELECT prefix, hash, role, name, created_at, revoked_at FROM steward.api_keys WHERE prefix = $1")
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        row.map(convert::api_key).transpose()
    }

    async fn revoke_api_key(
        &self,
        prefix: &str,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE steward.api_keys SET revoked_at = $1 WHERE prefix = $2 AND revoked_at IS NULL",
        )
        .bind(to_nanos(at))
        .bind(prefix)
        .execute(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn keys_to_rewrap(
        &self,
        table: KeyTable,
        version: u32,
        limit: u32,
    ) -> Result<Vec<(SubjectId, WrappedKey)>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT subject, kek_version, wrapped FROM steward_keys.{} WHERE kek_version < $1 ORDER BY subject LIMIT $2", table.table())))
            .bind(i64::from(version))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(|(id, v, bytes)| {
                Ok((
                    SubjectId(convert::uuid(&id)?),
                    WrappedKey {
                        kek_version: convert::version(v)?,
                        bytes,
                    },
                ))
            })
            .collect()
    }

    async fn count_keys_to_rewrap(&self, table: KeyTable, version: u32) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM steward_keys.{} WHERE kek_version < $1",
            table.table()
        )))
        .bind(i64::from(version))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn rewrap_keys(
        &self,
        table: KeyTable,
        keys: &[(SubjectId, WrappedKey)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (id, key) in keys {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE steward_keys.{} SET kek_version = $1, wrapped = $2 WHERE subject = $3",
                table.table()
            )))
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .bind(id.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        }
        tx.commit().await.map_err(|e| backend(&e))
    }

    async fn replace_root(&self, name: &str, key: &WrappedKey) -> Result<(), StoreError> {
        sqlx::query("UPDATE steward_keys.roots SET kek_version = $1, wrapped = $2 WHERE name = $3")
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .bind(name)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn count_subjects(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM steward.subjects")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
