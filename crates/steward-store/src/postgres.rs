//! PostgreSQL, for scale: data in the `steward` schema, wrapped keys in `steward_keys` (back
//! them up separately), each operation one transaction across both.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
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

    async fn erase_subjects(
        &self,
        batch: &[(SubjectId, Option<Hold>)],
    ) -> Result<Vec<bool>, StoreError> {
        // Crypto-shredding first (the keys go, the hold keys are written), then the rows, in
        // one transaction.
        let mut erased = Vec::with_capacity(batch.len());
        let mut tx = self.begin().await?;
        for (id, hold) in batch {
            let subject = id.as_bytes().as_slice();
            let deleted = sqlx::query("DELETE FROM steward_keys.subject_keys WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
            erased.push(deleted.rows_affected() > 0);
            if deleted.rows_affected() == 0 {
                continue;
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
            sqlx::query("DELETE FROM steward.subjects WHERE id = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
            for held in hold.as_ref().map_or(&[][..], |h| &h.fields) {
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
        }
        tx.commit().await.map_err(|e| backend(&e))?;
        Ok(erased)
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
        let (purposes, categories, operations) = convert::scope_columns(&key.scope);
        sqlx::query("INSERT INTO steward.api_keys (prefix, hash, role, name, created_at, purposes, categories, operations, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&key.prefix)
            .bind(key.hash.as_slice())
            .bind(key.role.as_str())
            .bind(&key.name)
            .bind(to_nanos(key.created_at))
            .bind(purposes)
            .bind(categories)
            .bind(operations)
            .bind(key.expires_at.map(to_nanos))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<convert::ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM steward.api_keys WHERE prefix = $1",
            convert::API_KEY_COLUMNS
        )))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        row.map(convert::api_key).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows: Vec<convert::ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM steward.api_keys ORDER BY created_at, prefix",
            convert::API_KEY_COLUMNS
        )))
        .fetch_all(&self.pool)
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

    async fn append_audit(
        &self,
        entries: Vec<AuditEntry>,
        chain: &AuditChain,
    ) -> Result<Seal, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| backend(&e))?;
        // One writer at a time, across processes: the head is read under this lock.
        sqlx::query("SELECT pg_advisory_xact_lock(7310001)")
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM steward.audit_head WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        let head = head.map(convert::seal).transpose()?;
        let batch = chain.append(head.as_ref(), entries);
        for rows in batch.entries.chunks(convert::AUDIT_ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO steward.audit_entries (seq, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash) ",
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
                    .push_bind(e.entry.flagged)
                    .push_bind(e.entry.detail.clone())
                    .push_bind(e.prev.to_vec())
                    .push_bind(e.hash.to_vec());
            });
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
        }
        for c in &batch.checkpoints {
            sqlx::query(
                "INSERT INTO steward.audit_checkpoints (seq, hash, mac) VALUES ($1, $2, $3)",
            )
            .bind(convert::to_seq(c.seq))
            .bind(c.hash.as_slice())
            .bind(c.mac.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        }
        sqlx::query("INSERT INTO steward.audit_head (id, seq, hash, mac) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac")
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
            sqlx::query_as("SELECT seq, hash, mac FROM steward.audit_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        head.map(convert::seal).transpose()
    }

    async fn audit_last_seq(&self) -> Result<u64, StoreError> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM steward.audit_entries")
            .fetch_one(&self.pool)
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
            "SELECT {} FROM steward.audit_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            convert::AUDIT_COLUMNS
        )))
        .bind(convert::to_seq(after))
        .bind(convert::to_seq(through))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::AuditRow::into_sealed)
            .collect()
    }

    async fn audit_checkpoints(&self, after: u64, through: u64) -> Result<Vec<Seal>, StoreError> {
        let rows: Vec<convert::SealRow> = sqlx::query_as(
            "SELECT seq, hash, mac FROM steward.audit_checkpoints WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(convert::to_seq(after))
        .bind(convert::to_seq(through))
        .fetch_all(&self.pool)
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
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {} FROM steward.audit_entries WHERE seq > ",
            convert::AUDIT_COLUMNS
        ));
        q.push_bind(convert::to_seq(after));
        convert::push_filter(&mut q, filter);
        q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<convert::AuditRow> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::AuditRow::into_sealed)
            .collect()
    }

    async fn insert_staff(&self, s: &StaffRecord) -> Result<(), StoreError> {
        let done = sqlx::query("INSERT INTO steward.staff (username, role, password_hash, totp, totp_last_step, failed, locked_until, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&s.username)
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(s.disabled)
            .bind(to_nanos(s.created_at))
            .execute(&self.pool)
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
            "SELECT {} FROM steward.staff WHERE username = $1",
            convert::STAFF_COLUMNS
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        row.map(convert::staff).transpose()
    }

    async fn list_staff(&self) -> Result<Vec<StaffRecord>, StoreError> {
        let rows: Vec<convert::StaffRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM steward.staff ORDER BY username",
            convert::STAFF_COLUMNS
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::staff).collect()
    }

    async fn update_staff(&self, s: &StaffRecord) -> Result<(), StoreError> {
        sqlx::query("UPDATE steward.staff SET role = $1, password_hash = $2, totp = $3, totp_last_step = $4, failed = $5, locked_until = $6, disabled = $7 WHERE username = $8")
            .bind(s.role.as_str())
            .bind(&s.password_hash)
            .bind(s.totp.as_deref())
            .bind(s.totp_last_step)
            .bind(i64::from(s.failed))
            .bind(s.locked_until.map(to_nanos))
            .bind(s.disabled)
            .bind(&s.username)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO steward.staff_sessions (hash, username, created_at, expires_at, last_seen) VALUES ($1, $2, $3, $4, $5)")
            .bind(s.hash.as_slice())
            .bind(&s.username)
            .bind(to_nanos(s.created_at))
            .bind(to_nanos(s.expires_at))
            .bind(to_nanos(s.last_seen))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn find_session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<convert::SessionRow> = sqlx::query_as("SELECT hash, username, created_at, expires_at, last_seen FROM steward.staff_sessions WHERE hash = $1")
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        row.map(convert::session).transpose()
    }

    async fn touch_session(
        &self,
        hash: &[u8; 32],
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE steward.staff_sessions SET last_seen = $1 WHERE hash = $2")
            .bind(to_nanos(at))
            .bind(hash.as_slice())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| backend(&e))
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM steward.staff_sessions WHERE hash = $1")
            .bind(hash.as_slice())
            .execute(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_of(&self, username: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM steward.staff_sessions WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        Ok(done.rows_affected())
    }
    async fn append_consent(
        &self,
        events: Vec<ConsentEvent>,
        chain: &LedgerChain,
    ) -> Result<Vec<SealedEvent>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| backend(&e))?;
        sqlx::query("SELECT pg_advisory_xact_lock(7310002)")
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        let head: Option<convert::SealRow> =
            sqlx::query_as("SELECT seq, hash, mac FROM steward.consent_head WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
        let head = head.map(convert::seal).transpose()?;
        let (sealed, head) = chain.append(head.as_ref(), events);
        for rows in sealed.chunks(convert::CONSENT_ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO steward.consent_events (seq, at, party_kind, party, action, purpose, signal, link, policy, terms, method, notice, ip, user_agent, actor, prev, hash) ",
            );
            convert::push_consent(&mut q, rows);
            q.build().execute(&mut *tx).await.map_err(|e| backend(&e))?;
        }
        sqlx::query("INSERT INTO steward.consent_head (id, seq, hash, mac) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac")
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
            sqlx::query_as("SELECT seq, hash, mac FROM steward.consent_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend(&e))?;
        head.map(convert::seal).transpose()
    }

    async fn consent_events(&self, after: u64, limit: u32) -> Result<Vec<SealedEvent>, StoreError> {
        let rows: Vec<convert::ConsentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM steward.consent_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            convert::CONSENT_COLUMNS
        )))
        .bind(convert::to_seq(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
                "SELECT {} FROM steward.consent_events WHERE party = $1 AND party_kind = $2 ORDER BY seq",
                convert::CONSENT_COLUMNS
            )))
            .bind(party.bytes().to_vec())
            .bind(party.kind())
            .fetch_all(&self.pool)
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
            "SELECT {} FROM steward.consent_events WHERE link = $1 ORDER BY seq",
            convert::CONSENT_COLUMNS
        )))
        .bind(subject.as_bytes().as_slice())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter()
            .map(convert::ConsentRow::into_sealed)
            .collect()
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows: Vec<convert::VersionRow> = sqlx::query_as(
            "SELECT version, must_accept, terms, recorded_at FROM steward.policy_versions ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        rows.into_iter().map(convert::policy_version).collect()
    }

    async fn add_policy_version(&self, v: &PolicyVersion) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| backend(&e))?;
        sqlx::query("SELECT pg_advisory_xact_lock(7310002)")
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        sqlx::query("INSERT INTO steward.policy_versions (version, must_accept, terms, recorded_at) VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING")
            .bind(&v.version)
            .bind(v.must_accept)
            .bind(convert::terms_json(v))
            .bind(to_nanos(v.recorded_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
        if v.must_accept {
            sqlx::query("INSERT INTO steward.policy_notices (version, subject, queued_at) SELECT $1, id, $2 FROM steward.subjects ON CONFLICT DO NOTHING")
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
            "SELECT subject FROM steward.policy_notices WHERE version = $1 AND sent_at IS NULL ORDER BY subject LIMIT $2",
        )
        .bind(version)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        sqlx::query(
            "UPDATE steward.policy_notices SET sent_at = $1 WHERE version = $2 AND subject = $3",
        )
        .bind(to_nanos(at))
        .bind(version)
        .bind(subject.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(|e| backend(&e))?;
        Ok(())
    }

    crate::requests::request_methods!(Postgres, pool, "steward.", " FOR UPDATE SKIP LOCKED");
}
