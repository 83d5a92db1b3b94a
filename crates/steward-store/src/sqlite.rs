//! The embedded default: two SQLite files in the data folder, `steward.db` (ciphertext and
//! blind indexes) and `keys.db` (wrapped keys). WAL mode with `synchronous = FULL` (a commit,
//! an audit entry included, survives a power cut), foreign keys, `secure_delete` so
//! erased rows are overwritten on disk, and a busy timeout for concurrent writers.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder, Row, Sqlite, Transaction};
use steward_core::access::Scope;
use steward_core::api_key::ApiKeyRecord;
use steward_core::audit::{AuditChain, AuditEntry, AuditFilter, Seal, SealedEntry};
use steward_core::consent::{ConsentEvent, LedgerChain, Party, SealedEvent};
use steward_core::ledger::PolicyVersion;
use steward_core::staff::{SessionRecord, StaffRecord};
use steward_core::store::KeyTable;
use steward_core::store::{Hold, SealedField, SealedIdentity, SubjectRecord};
use steward_core::{Store, StoreError, SubjectId};
use steward_crypto::WrappedKey;

use crate::convert::{self, FieldRow, backend, from_nanos, is_unique_violation, to_nanos};

/// SQLite store: data and keys in two files of one folder.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    data: SqlitePool,
    keys: SqlitePool,
    dir: PathBuf,
}

async fn pool(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|e| backend(&e))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("secure_delete", "ON");
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir` and applies its migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let data = pool(&dir.join("steward.db")).await?;
        let keys = pool(&dir.join("keys.db")).await?;
        sqlx::migrate!("./migrations/sqlite/data")
            .run(&data)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating steward.db: {e}")))?;
        sqlx::migrate!("./migrations/sqlite/keys")
            .run(&keys)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating keys.db: {e}")))?;
        Ok(Self {
            data,
            keys,
            dir: dir.to_owned(),
        })
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the WAL back into the database files and closes the pools (for backups and tests
    /// that inspect the files).
    pub async fn close(self) {
        for pool in [&self.data, &self.keys] {
            let _ = pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
            pool.close().await;
        }
    }

    async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
        pool.begin().await.map_err(|e| backend(&e))
    }
}

async fn insert_field(
    tx: &mut Transaction<'static, Sqlite>,
    subject: &SubjectId,
    f: &SealedField,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO fields (id, subject, category, purpose, source, collected_at, sealed) VALUES (?, ?, ?, ?, ?, ?, ?)")
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

impl Store for SqliteStore {
    async fn root(&self, name: &str) -> Result<Option<WrappedKey>, StoreError> {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT kek_version, wrapped FROM roots WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.keys)
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
        sqlx::query("INSERT INTO roots (name, kek_version, wrapped) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .execute(&self.keys)
            .await
            .map_err(|e| backend(&e))?;
        self.root(name).await?.ok_or_else(|| {
            StoreError::Backend("the root key vanished after it was written".to_owned())
        })
    }

    async fn insert_subjects(&self, subjects: &[SubjectRecord]) -> Result<(), StoreError> {
        // Multi-row INSERTs: one statement per table and chunk instead of one per row.
        const ROWS: usize = 500;
        let mut data = Self::begin(&self.data).await?;
        let written: Result<(), sqlx::Error> = async {
            for chunk in subjects.chunks(ROWS) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO subjects (id, created_at) ");
                q.push_values(chunk, |mut b, s| {
                    b.push_bind(s.id.as_bytes().to_vec()).push_bind(to_nanos(s.created_at));
                });
                q.build().execute(&mut *data).await?;
            }
            let identities: Vec<(&SubjectRecord, &SealedIdentity)> = subjects.iter().flat_map(|s| s.identities.iter().map(move |i| (s, i))).collect();
            for chunk in identities.chunks(ROWS) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO identities (subject, kind, idx, sealed) ");
                q.push_values(chunk, |mut b, (s, i)| {
                    b.push_bind(s.id.as_bytes().to_vec()).push_bind(i.kind.clone()).push_bind(i.index.to_vec()).push_bind(i.sealed.clone());
                });
                q.build().execute(&mut *data).await?;
            }
            let fields: Vec<(&SubjectRecord, &SealedField)> = subjects.iter().flat_map(|s| s.fields.iter().map(move |f| (s, f))).collect();
            for chunk in fields.chunks(ROWS) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO fields (id, subject, category, purpose, source, collected_at, sealed) ");
                q.push_values(chunk, |mut b, (s, f)| {
                    b.push_bind(f.id.as_bytes().to_vec())
                        .push_bind(s.id.as_bytes().to_vec())
                        .push_bind(f.category.clone())
                        .push_bind(f.purpose.clone())
                        .push_bind(f.source.clone())
                        .push_bind(to_nanos(f.collected_at))
                        .push_bind(f.sealed.clone());
                });
                q.build().execute(&mut *data).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            let _ = data.rollback().await;
            return Err(if is_unique_violation(&e) {
                StoreError::Duplicate {
                    kind: convert::duplicate_kind(self, subjects).await,
                }
            } else {
                backend(&e)
            });
        }
        // Keys are committed before the data: a crash in between leaves a key with no data
        // (harmless), never data without its key.
        let mut keys = Self::begin(&self.keys).await?;
        for chunk in subjects.chunks(ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO subject_keys (subject, kek_version, wrapped) ",
            );
            q.push_values(chunk, |mut b, s| {
                b.push_bind(s.id.as_bytes().to_vec())
                    .push_bind(i64::from(s.key.kek_version))
                    .push_bind(s.key.bytes.clone());
            });
            q.build()
                .execute(&mut *keys)
                .await
                .map_err(|e| backend(&e))?;
        }
        keys.commit().await.map_err(|e| backend(&e))?;
        data.commit().await.map_err(|e| backend(&e))
    }

    async fn find_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> Result<Option<SubjectId>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT subject FROM identities WHERE kind = ? AND idx = ?")
                .bind(kind)
                .bind(index.as_slice())
                .fetch_optional(&self.data)
                .await
                .map_err(|e| backend(&e))?;
        row.map(|(id,)| convert::uuid(&id).map(SubjectId))
            .transpose()
    }

    async fn load_subject(&self, id: SubjectId) -> Result<Option<SubjectRecord>, StoreError> {
        let key: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT kek_version, wrapped FROM subject_keys WHERE subject = ?")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.keys)
                .await
                .map_err(|e| backend(&e))?;
        let subject: Option<(i64,)> =
            sqlx::query_as("SELECT created_at FROM subjects WHERE id = ?")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.data)
                .await
                .map_err(|e| backend(&e))?;
        let (Some((kek_version, wrapped)), Some((created_at,))) = (key, subject) else {
            return Ok(None);
        };
        let identities = sqlx::query(
            "SELECT kind, idx, sealed FROM identities WHERE subject = ? ORDER BY kind, idx",
        )
        .bind(id.as_bytes().as_slice())
        .fetch_all(&self.data)
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
        let fields = sqlx::query_as::<_, FieldRow>("SELECT id, category, purpose, source, collected_at, sealed FROM fields WHERE subject = ? ORDER BY collected_at, id")
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.data)
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
        let mut tx = Self::begin(&self.data).await?;
        sqlx::query("DELETE FROM fields WHERE id = ? AND subject = ?")
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

    async fn erase_subjects(
        &self,
        batch: &[(SubjectId, Option<Hold>)],
    ) -> Result<Vec<bool>, StoreError> {
        // 1. Crypto-shredding: the keys go first (and the hold keys are written).
        let mut erased = Vec::with_capacity(batch.len());
        let mut keys = Self::begin(&self.keys).await?;
        for (id, hold) in batch {
            let subject = id.as_bytes().as_slice();
            let deleted = sqlx::query("DELETE FROM subject_keys WHERE subject = ?")
                .bind(subject)
                .execute(&mut *keys)
                .await
                .map_err(|e| backend(&e))?;
            erased.push(deleted.rows_affected() > 0);
            if deleted.rows_affected() == 0 {
                continue;
            }
            if let Some(hold) = hold {
                sqlx::query("INSERT INTO hold_keys (subject, kek_version, wrapped) VALUES (?, ?, ?) ON CONFLICT (subject) DO UPDATE SET kek_version = excluded.kek_version, wrapped = excluded.wrapped")
                    .bind(subject)
                    .bind(i64::from(hold.key.kek_version))
                    .bind(&hold.key.bytes)
                    .execute(&mut *keys)
                    .await
                    .map_err(|e| backend(&e))?;
            }
        }
        keys.commit().await.map_err(|e| backend(&e))?;
        // 2. The rows: unreadable already, now gone.
        let mut data = Self::begin(&self.data).await?;
        for ((id, hold), _) in batch.iter().zip(&erased).filter(|(_, e)| **e) {
            let subject = id.as_bytes().as_slice();
            sqlx::query("DELETE FROM subjects WHERE id = ?")
                .bind(subject)
                .execute(&mut *data)
                .await
                .map_err(|e| backend(&e))?;
            for held in hold.as_ref().map_or(&[][..], |h| &h.fields) {
                let f = &held.field;
                sqlx::query("INSERT INTO held_fields (id, subject, category, purpose, source, collected_at, sealed, reason, hold_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(f.id.as_bytes().as_slice())
                    .bind(subject)
                    .bind(&f.category)
                    .bind(&f.purpose)
                    .bind(&f.source)
                    .bind(to_nanos(f.collected_at))
                    .bind(&f.sealed)
                    .bind(&held.reason)
                    .bind(held.until.map(to_nanos))
                    .execute(&mut *data)
                    .await
                    .map_err(|e| backend(&e))?;
            }
        }
        data.commit().await.map_err(|e| backend(&e))?;
        Ok(erased)
    }

    async fn held(&self, id: SubjectId) -> Result<Option<Hold>, StoreError> {
        let key: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT kek_version, wrapped FROM hold_keys WHERE subject = ?")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.keys)
                .await
                .map_err(|e| backend(&e))?;
        let Some((kek_version, wrapped)) = key else {
            return Ok(None);
        };
        let rows: Vec<convert::HeldRow> =
            sqlx::query_as("SELECT id, category, purpose, source, collected_at, sealed, reason, hold_until FROM held_fields WHERE subject = ? ORDER BY collected_at, id")
                .bind(id.as_bytes().as_slice())
                .fetch_all(&self.data)
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
        let (purposes, categories, operations) = convert::scope_columns(&key.scope);
        sqlx::query("INSERT INTO api_keys (prefix, hash, role, name, created_at, purposes, categories, operations, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&key.prefix)
            .bind(key.hash.as_slice())
            .bind(key.role.as_str())
            .bind(&key.name)
            .bind(to_nanos(key.created_at))
            .bind(purposes)
            .bind(categories)
            .bind(operations)
            .bind(key.expires_at.map(to_nanos))
            .execute(&self.data)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<convert::ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM api_keys WHERE prefix = ?",
            convert::API_KEY_COLUMNS
        )))
        .bind(prefix)
        .fetch_optional(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        row.map(convert::api_key).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows: Vec<convert::ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM api_keys ORDER BY created_at, prefix",
            convert::API_KEY_COLUMNS
        )))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        prefix: &str,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
        )
        .bind(to_nanos(at))
        .bind(prefix)
        .execute(&self.data)
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
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT subject, kek_version, wrapped FROM {} WHERE kek_version < ? ORDER BY subject LIMIT ?", table.table())))
            .bind(i64::from(version))
            .bind(i64::from(limit))
            .fetch_all(&self.keys)
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
            "SELECT COUNT(*) FROM {} WHERE kek_version < ?",
            table.table()
        )))
        .bind(i64::from(version))
        .fetch_one(&self.keys)
        .await
        .map_err(|e| backend(&e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn rewrap_keys(
        &self,
        table: KeyTable,
        keys: &[(SubjectId, WrappedKey)],
    ) -> Result<(), StoreError> {
        let mut tx = Self::begin(&self.keys).await?;
        for (id, key) in keys {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {} SET kek_version = ?, wrapped = ? WHERE subject = ?",
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
        sqlx::query("UPDATE roots SET kek_version = ?, wrapped = ? WHERE name = ?")
            .bind(i64::from(key.kek_version))
            .bind(&key.bytes)
            .bind(name)
            .execute(&self.keys)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn count_subjects(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM subjects")
            .fetch_one(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn append_audit(
        &self,
        entries: Vec<AuditEntry>,
        chain: &AuditChain,
    ) -> Result<Seal, StoreError> {
        // BEGIN IMMEDIATE takes the write lock before the head is read, so two writers (two
        // processes on one file) can never chain after the same head.
        let mut tx = self
            .data
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| backend(&e))?;
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        let head = head.map(convert::seal).transpose()?;
        let batch = chain.append(head.as_ref(), entries);
        for rows in batch.entries.chunks(convert::AUDIT_ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO audit_entries (seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash) ",
            );
            q.push_values(rows, |mut b, e| {
                b.push_bind(convert::to_seq(e.seq))
                    .push_bind(to_nanos(e.entry.at))
                    .push_bind(e.entry.request.as_bytes().to_vec())
                    .push_bind(e.entry.actor.clone())
                    .push_bind(e.entry.role.clone())
                    .push_bind(e.entry.action.clone())
                    .push_bind(e.entry.purpose.clone())
                    .push_bind(e.entry.subject.map(|s| s.as_bytes().to_vec()))
                    .push_bind(Scope::join(&e.entry.categories))
                    .push_bind(e.entry.outcome.as_str())
                    .push_bind(e.entry.code.clone())
                    .push_bind(e.entry.ticket.clone())
                    .push_bind(i64::from(e.entry.flagged))
                    .push_bind(e.entry.detail.clone())
                    .push_bind(e.prev.to_vec())
                    .push_bind(e.hash.to_vec());
            });
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
        }
        for c in &batch.checkpoints {
            sqlx::query("INSERT INTO audit_checkpoints (seq, hash, mac) VALUES (?, ?, ?)")
                .bind(convert::to_seq(c.seq))
                .bind(c.hash.as_slice())
                .bind(c.mac.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        }
        sqlx::query("INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac")
            .bind(convert::to_seq(batch.head.seq))
            .bind(batch.head.hash.as_slice())
            .bind(batch.head.mac.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        tx.commit().await.map_err(|e| backend(&e))?;
        Ok(batch.head)
    }

    async fn audit_head(&self) -> Result<Option<Seal>, StoreError> {
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
                .fetch_optional(&self.data)
                .await
                .map_err(|e| backend(&e))?;
        head.map(convert::seal).transpose()
    }

    async fn audit_last_seq(&self) -> Result<u64, StoreError> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM audit_entries")
            .fetch_one(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        convert::seq(n.unwrap_or(0))
    }

    async fn audit_entries(
        &self,
        after: u64,
        through: u64,
        limit: u32,
    ) -> Result<Vec<SealedEntry>, StoreError> {
        let rows: Vec<convert::AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_entries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            convert::AUDIT_COLUMNS
        )))
        .bind(convert::to_seq(after))
        .bind(convert::to_seq(through))
        .bind(i64::from(limit))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::AuditRow::into_sealed)
            .collect()
    }

    async fn audit_checkpoints(&self, after: u64, through: u64) -> Result<Vec<Seal>, StoreError> {
        let rows: Vec<convert::SealRow> = sqlx::query_as(
            "SELECT seq, hash, mac FROM audit_checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq",
        )
        .bind(convert::to_seq(after))
        .bind(convert::to_seq(through))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::seal).collect()
    }

    async fn audit_search(
        &self,
        filter: &AuditFilter,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEntry>, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {} FROM audit_entries WHERE seq > ",
            convert::AUDIT_COLUMNS
        ));
        q.push_bind(convert::to_seq(after));
        convert::push_filter(&mut q, filter);
        q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<convert::AuditRow> = q
            .build_query_as()
            .fetch_all(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::AuditRow::into_sealed)
            .collect()
    }

    async fn insert_staff(&self, s: &StaffRecord) -> Result<(), StoreError> {
        let done = sqlx::query("INSERT INTO staff (username, role, password_hash, totp, totp_last_step, failed, locked_until, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&s.username)
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(i64::from(s.disabled))
            .bind(to_nanos(s.created_at))
            .execute(&self.data)
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate {
                kind: "username".to_owned(),
            }),
            Err(e) => Err(backend(&e)),
        }
    }

    async fn find_staff(&self, username: &str) -> Result<Option<StaffRecord>, StoreError> {
        let row: Option<convert::StaffRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM staff WHERE username = ?",
            convert::STAFF_COLUMNS
        )))
        .bind(username)
        .fetch_optional(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        row.map(convert::staff).transpose()
    }

    async fn list_staff(&self) -> Result<Vec<StaffRecord>, StoreError> {
        let rows: Vec<convert::StaffRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM staff ORDER BY username",
            convert::STAFF_COLUMNS
        )))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::staff).collect()
    }

    async fn update_staff(&self, s: &StaffRecord) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET role = ?, password_hash = ?, totp = ?, totp_last_step = ?, failed = ?, locked_until = ?, disabled = ? WHERE username = ?")
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(i64::from(s.disabled))
            .bind(&s.username)
            .execute(&self.data)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO staff_sessions (hash, username, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?)")
            .bind(s.hash.as_slice())
            .bind(&s.username)
            .bind(to_nanos(s.created_at))
            .bind(to_nanos(s.expires_at))
            .bind(to_nanos(s.last_seen))
            .execute(&self.data)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn find_session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<convert::SessionRow> = sqlx::query_as("SELECT hash, username, created_at, expires_at, last_seen FROM staff_sessions WHERE hash = ?")
            .bind(hash.as_slice())
            .fetch_optional(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        row.map(convert::session).transpose()
    }

    async fn touch_session(
        &self,
        hash: &[u8; 32],
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff_sessions SET last_seen = ? WHERE hash = ?")
            .bind(to_nanos(at))
            .bind(hash.as_slice())
            .execute(&self.data)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE hash = ?")
            .bind(hash.as_slice())
            .execute(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_of(&self, username: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE username = ?")
            .bind(username)
            .execute(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        Ok(done.rows_affected())
    }
    async fn append_consent(
        &self,
        events: Vec<ConsentEvent>,
        chain: &LedgerChain,
    ) -> Result<Vec<SealedEvent>, StoreError> {
        let mut tx = self
            .data
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| backend(&e))?;
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM consent_head WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        let head = head.map(convert::seal).transpose()?;
        let (sealed, head) = chain.append(head.as_ref(), events);
        for rows in sealed.chunks(convert::CONSENT_ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO consent_events (seq, at, party_kind, party, action, purpose, signal, link, policy, terms, method, notice, ip, user_agent, actor, prev, hash) ",
            );
            convert::push_consent(&mut q, rows);
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
        }
        sqlx::query("INSERT INTO consent_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac")
            .bind(convert::to_seq(head.seq))
            .bind(head.hash.as_slice())
            .bind(head.mac.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        tx.commit().await.map_err(|e| backend(&e))?;
        Ok(sealed)
    }

    async fn consent_head(&self) -> Result<Option<Seal>, StoreError> {
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM consent_head WHERE id = 1")
                .fetch_optional(&self.data)
                .await
                .map_err(|e| backend(&e))?;
        head.map(convert::seal).transpose()
    }

    async fn consent_events(&self, after: u64, limit: u32) -> Result<Vec<SealedEvent>, StoreError> {
        let rows: Vec<convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM consent_events WHERE seq > ? ORDER BY seq LIMIT ?",
            convert::CONSENT_COLUMNS
        )))
        .bind(convert::to_seq(after))
        .bind(i64::from(limit))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::ConsentRow::into_sealed)
            .collect()
    }

    async fn consent_of(&self, parties: &[Party]) -> Result<Vec<SealedEvent>, StoreError> {
        let mut out = Vec::new();
        for party in parties {
            let rows: Vec<convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM consent_events WHERE party = ? AND party_kind = ? ORDER BY seq",
                convert::CONSENT_COLUMNS
            )))
            .bind(party.bytes().to_vec())
            .bind(party.kind())
            .fetch_all(&self.data)
            .await
            .map_err(|e| backend(&e))?;
            for r in rows {
                out.push(r.into_sealed()?);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    async fn consent_links(&self, subject: SubjectId) -> Result<Vec<SealedEvent>, StoreError> {
        let rows: Vec<convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM consent_events WHERE link = ? ORDER BY seq",
            convert::CONSENT_COLUMNS
        )))
        .bind(subject.as_bytes().as_slice())
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::ConsentRow::into_sealed)
            .collect()
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows: Vec<convert::VersionRow> = sqlx::query_as(
            "SELECT version, must_accept, terms, recorded_at FROM policy_versions ORDER BY seq",
        )
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::policy_version).collect()
    }

    async fn add_policy_version(&self, v: &PolicyVersion) -> Result<(), StoreError> {
        let mut tx = self
            .data
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| backend(&e))?;
        sqlx::query("INSERT INTO policy_versions (version, must_accept, terms, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING")
            .bind(&v.version)
            .bind(v.must_accept)
            .bind(convert::terms_json(v))
            .bind(to_nanos(v.recorded_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        if v.must_accept {
            sqlx::query("INSERT INTO policy_notices (version, subject, queued_at) SELECT ?, id, ? FROM subjects WHERE true ON CONFLICT DO NOTHING")
                .bind(&v.version)
                .bind(to_nanos(v.recorded_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        }
        tx.commit().await.map_err(|e| backend(&e))
    }

    async fn policy_notices(
        &self,
        version: &str,
        limit: u32,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT subject FROM policy_notices WHERE version = ? AND sent_at IS NULL ORDER BY subject LIMIT ?",
        )
        .bind(version)
        .bind(i64::from(limit))
        .fetch_all(&self.data)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(|(s,)| convert::uuid(&s).map(SubjectId))
            .collect()
    }

    async fn mark_policy_notice(
        &self,
        version: &str,
        subject: SubjectId,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE policy_notices SET sent_at = ? WHERE version = ? AND subject = ?")
            .bind(to_nanos(at))
            .bind(version)
            .bind(subject.as_bytes().as_slice())
            .execute(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }

    crate::requests::request_methods!(Sqlite, data, "", "");
}
