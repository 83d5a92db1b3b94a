//! The vault's statements — subjects, their identities and fields, their keys, erasure and
//! legal holds — written once for both backends (see `access` for the convention: `?`
//! placeholders through `$sql`, `{p}` the schema prefix).
//!
//! What differs is where the keys live. PostgreSQL keeps them in a schema of the same
//! database (`joint`): one transaction writes a subject's key, its data and its audit entry.
//! SQLite keeps them in a second file (`split`), and no transaction spans two WAL-mode files,
//! so the order is what keeps the promise:
//!
//! - a new subject's key is committed before its data: a failure between the two leaves a
//!   key for nobody (harmless), never data that cannot be opened;
//! - an erasure first commits the fields a legal hold keeps (sealed under the hold key, which
//!   is not stored yet), then destroys the subject key, stores the hold key and marks the
//!   erasure begun (one commit in `keys.db`, with what a legal hold keeps), then deletes the
//!   rows and writes the audit entries (one commit in `steward.db`) and clears the mark. An
//!   erasure cut off after its keys went is finished by `VaultStore::finish_interrupted`, which
//!   the vault calls every second while a server runs and before each erasure, and audits:
//!   the person is erased, never half there — found by a look-up but neither readable nor
//!   creatable again.

/// A statement for `$sql` with `{p}` the prefix `$p`.
macro_rules! stmt {
    ($sql:path, $p:expr, $text:literal) => {
        sqlx::AssertSqlSafe($sql(&format!($text, p = $p)))
    };
}

/// Writes the subjects' keys in `$tx` (both modes; `split` commits it apart).
macro_rules! insert_keys {
    ($db:ty, $tx:expr, $kp:literal, $subjects:expr) => {{
        let mut written: Result<(), sqlx::Error> = Ok(());
        for chunk in $subjects.chunks(crate::subjects::ROWS) {
            let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                "INSERT INTO {p}subject_keys (subject, kek_version, wrapped) ",
                p = $kp
            ));
            q.push_values(chunk, |mut b, s| {
                b.push_bind(s.id.as_bytes().to_vec())
                    .push_bind(i64::from(s.key.kek_version))
                    .push_bind(s.key.bytes.clone());
            });
            if let Err(e) = q.build().execute(&mut **$tx).await {
                written = Err(e);
                break;
            }
        }
        written
    }};
}

/// Expands to the vault's methods of `Store` for a backend whose data tables are in
/// `self.$data` named with `$p`, whose key tables are in `self.$keys` named with `$kp`, its
/// statements passed through `$sql`; `$mode` is `split` (keys in their own database) or
/// `joint` (one transaction for both). The backend provides `begin_write` (a transaction
/// holding the write lock from its first statement) and the free function `append_audit_in`.
macro_rules! subject_methods {
    ($db:ty, $data:ident, $p:literal, $keys:ident, $kp:literal, $sql:path, $mode:tt) => {
        async fn insert_subjects(
            &self,
            subjects: &[steward_core::store::SubjectRecord],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<(), StoreError> {
            use crate::convert::{backend, to_nanos};
            let mut data = self.begin_write().await?;
            let written: Result<(), sqlx::Error> = async {
                for chunk in subjects.chunks(crate::subjects::ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO {p}subjects (id, created_at) ",
                        p = $p
                    ));
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(s.id.as_bytes().to_vec())
                            .push_bind(to_nanos(s.created_at));
                    });
                    q.build().execute(&mut *data).await?;
                }
                let identities: Vec<_> = subjects
                    .iter()
                    .flat_map(|s| s.identities.iter().map(move |i| (s, i)))
                    .collect();
                for chunk in identities.chunks(crate::subjects::ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO {p}identities (subject, kind, idx, sealed, purpose) ",
                        p = $p
                    ));
                    q.push_values(chunk, |mut b, (s, i)| {
                        b.push_bind(s.id.as_bytes().to_vec())
                            .push_bind(i.kind.clone())
                            .push_bind(i.index.to_vec())
                            .push_bind(i.sealed.clone())
                            .push_bind(i.purpose.clone());
                    });
                    q.build().execute(&mut *data).await?;
                }
                let fields: Vec<_> = subjects
                    .iter()
                    .flat_map(|s| s.fields.iter().map(move |f| (s.id, f)))
                    .collect();
                insert_fields(&mut data, $p, &fields).await?;
                append_audit_in(&mut data, audit.entries, audit.chain).await?;
                Ok(())
            }
            .await;
            if let Err(e) = written {
                let _ = data.rollback().await;
                return Err(if crate::convert::is_unique_violation(&e) {
                    StoreError::Duplicate {
                        kind: crate::convert::duplicate_kind(self, subjects).await,
                    }
                } else {
                    backend(&e)
                });
            }
            crate::subjects::with_keys!($mode, self.$keys, data, |tx| {
                crate::subjects::insert_keys!($db, tx, $kp, subjects)
            });
            data.commit().await.map_err(|e| backend(&e))
        }

            async fn count_subjects(&self) -> Result<u64, StoreError> {
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe($sql(&format!("SELECT COUNT(*) FROM {p}subjects", p = $p))))
                    .fetch_one(&self.$data)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

        async fn find_subject(
            &self,
            kind: &str,
            index: &[u8; 32],
        ) -> Result<Option<(SubjectId, Option<String>)>, StoreError> {
            use crate::subjects::stmt;
            let row: Option<(Vec<u8>, Option<String>)> = sqlx::query_as(stmt!(
                $sql,
                $p,
                "SELECT subject, purpose FROM {p}identities WHERE kind = ? AND idx = ?"
            ))
            .bind(kind)
            .bind(index.as_slice())
            .fetch_optional(&self.$data)
            .await
            .map_err(|e| crate::convert::backend(&e))?;
            row.map(|(id, purpose)| crate::convert::uuid(&id).map(|id| (SubjectId(id), purpose)))
                .transpose()
        }

        async fn known_identities(
            &self,
            kind: &str,
            indexes: &[[u8; 32]],
        ) -> Result<Vec<[u8; 32]>, StoreError> {
            let mut known = Vec::new();
            for chunk in indexes.chunks(crate::subjects::ROWS) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT idx FROM {p}identities WHERE kind = ",
                    p = $p
                ));
                q.push_bind(kind.to_owned()).push(" AND idx IN (");
                let mut list = q.separated(", ");
                for index in chunk {
                    list.push_bind(index.to_vec());
                }
                q.push(")");
                let rows: Vec<(Vec<u8>,)> = q
                    .build_query_as()
                    .fetch_all(&self.$data)
                    .await
                    .map_err(|e| crate::convert::backend(&e))?;
                for (index,) in rows {
                    known.push(crate::convert::index(&index)?);
                }
            }
            Ok(known)
        }

        async fn load_subject(
            &self,
            id: SubjectId,
        ) -> Result<Option<steward_core::store::SubjectRecord>, StoreError> {
            use crate::convert::{backend, from_nanos};
            use crate::subjects::stmt;
            let key: Option<(i64, Vec<u8>)> = sqlx::query_as(stmt!(
                $sql,
                $kp,
                "SELECT kek_version, wrapped FROM {p}subject_keys WHERE subject = ?"
            ))
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.$keys)
            .await
            .map_err(|e| backend(&e))?;
            let subject: Option<(i64,)> =
                sqlx::query_as(stmt!($sql, $p, "SELECT created_at FROM {p}subjects WHERE id = ?"))
                    .bind(id.as_bytes().as_slice())
                    .fetch_optional(&self.$data)
                    .await
                    .map_err(|e| backend(&e))?;
            let (Some((kek_version, wrapped)), Some((created_at,))) = (key, subject) else {
                return Ok(None);
            };
            let identities: Vec<(String, Vec<u8>, Vec<u8>, Option<String>)> = sqlx::query_as(stmt!(
                $sql,
                $p,
                "SELECT kind, idx, sealed, purpose FROM {p}identities WHERE subject = ? ORDER BY kind, idx"
            ))
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.$data)
            .await
            .map_err(|e| backend(&e))?;
            let identities = identities
                .into_iter()
                .map(|(kind, index, sealed, purpose)| {
                    Ok(steward_core::store::SealedIdentity {
                        kind,
                        index: crate::convert::index(&index)?,
                        sealed,
                        purpose,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let fields = sqlx::query_as::<_, crate::convert::FieldRow>(stmt!(
                $sql,
                $p,
                "SELECT id, category, purpose, source, collected_at, sealed FROM {p}fields WHERE subject = ? ORDER BY collected_at, id"
            ))
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.$data)
            .await
            .map_err(|e| backend(&e))?
            .into_iter()
            .map(crate::convert::field)
            .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(steward_core::store::SubjectRecord {
                id,
                created_at: from_nanos(created_at)?,
                key: steward_crypto::WrappedKey {
                    kek_version: crate::convert::version(kek_version)?,
                    bytes: wrapped,
                },
                identities,
                fields,
            }))
        }

        async fn put_fields(
            &self,
            subject: SubjectId,
            fields: &[steward_core::store::SealedField],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<(), StoreError> {
            use crate::convert::backend;
            use crate::subjects::stmt;
            let mut tx = self.begin_write().await?;
            // The subject is locked first: an erasure checking its fields waits, or is waited
            // for.
            // Writing the person's data is activity: "2 years of inactivity" counts from it.
            let locked = sqlx::query(stmt!(
                $sql,
                $p,
                "UPDATE {p}subjects SET active_at = COALESCE(?, active_at) WHERE id = ?"
            ))
            .bind(fields.iter().map(|f| crate::convert::to_nanos(f.collected_at)).max())
            .bind(subject.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(&e))?;
            if locked.rows_affected() == 0 {
                return Err(StoreError::Conflict);
            }
            for field in fields {
                sqlx::query(stmt!($sql, $p, "DELETE FROM {p}fields WHERE id = ? AND subject = ?"))
                    .bind(field.id.as_bytes().as_slice())
                    .bind(subject.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| backend(&e))?;
            }
            let rows: Vec<_> = fields.iter().map(|f| (subject, f)).collect();
            insert_fields(&mut tx, $p, &rows)
                .await
                .map_err(|e| backend(&e))?;
            append_audit_in(&mut tx, audit.entries, audit.chain)
                .await
                .map_err(|e| backend(&e))?;
            tx.commit().await.map_err(|e| backend(&e))
        }

        async fn erase_subjects(
            &self,
            batch: &[steward_core::store::Erasure],
            audit: steward_core::store::Audited<'_>,
        ) -> Result<Vec<steward_core::store::Erased>, StoreError> {
            use crate::convert::backend;
            use crate::subjects::stmt;
            use steward_core::store::Erased;
            // 1. The data's write lock first (the order every writer takes them in), each
            // subject locked and checked against what the erasure read, so that no field is
            // written between the check and the deletion.
            let mut tx = self.begin_write().await?;
            let mut state = Vec::with_capacity(batch.len());
            for e in batch {
                let subject = e.subject.as_bytes().as_slice();
                let locked = sqlx::query(stmt!(
                    $sql,
                    $p,
                    "UPDATE {p}subjects SET created_at = created_at WHERE id = ?"
                ))
                .bind(subject)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend(&e))?;
                if locked.rows_affected() == 0 {
                    state.push(Erased::Missing);
                    continue;
                }
                let rows: Vec<(Vec<u8>,)> =
                    sqlx::query_as(stmt!($sql, $p, "SELECT id FROM {p}fields WHERE subject = ?"))
                        .bind(subject)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(|e| backend(&e))?;
                state.push(if crate::convert::same_ids(&rows, &e.fields) {
                    Erased::Erased
                } else {
                    Erased::Changed
                });
            }
            // 2. Crypto-shredding: the subject keys go and the hold keys are stored.
            crate::subjects::with_keys!($mode, self.$keys, tx, |keys| {
                let mut done: Result<(), sqlx::Error> = Ok(());
                for (e, st) in batch.iter().zip(state.iter_mut()) {
                    if *st != Erased::Erased {
                        continue;
                    }
                    let shredded: Result<(), sqlx::Error> = async {
                        let subject = e.subject.as_bytes().as_slice();
                        let deleted = sqlx::query(stmt!(
                            $sql,
                            $kp,
                            "DELETE FROM {p}subject_keys WHERE subject = ?"
                        ))
                        .bind(subject)
                        .execute(&mut **keys)
                        .await?;
                        if deleted.rows_affected() == 0 {
                            *st = Erased::Missing;
                            return Ok(());
                        }
                        if let Some(hold) = &e.hold {
                            sqlx::query(stmt!(
                                $sql,
                                $kp,
                                "INSERT INTO {p}hold_keys (subject, kek_version, wrapped) VALUES (?, ?, ?) ON CONFLICT (subject) DO UPDATE SET kek_version = excluded.kek_version, wrapped = excluded.wrapped"
                            ))
                            .bind(subject)
                            .bind(i64::from(hold.key.kek_version))
                            .bind(&hold.key.bytes)
                            .execute(&mut **keys)
                            .await?;
                        }
                        crate::subjects::mark_erasure!($mode, $db, $kp, keys, e);
                        Ok(())
                    }
                    .await;
                    if let Err(e) = shredded {
                        done = Err(e);
                        break;
                    }
                }
                done
            });
            self.forget_erased_keys().await;
            // 3. The rows: unreadable already, now gone, but for what the holds keep; and the
            // audit entries of those erased, in the same transaction.
            for (e, _) in batch.iter().zip(&state).filter(|(_, st)| **st == Erased::Erased) {
                delete_rows(&mut tx, $p, e.subject, e.hold.as_ref())
                    .await
                    .map_err(|e| backend(&e))?;
            }
            let mut entries = Vec::new();
            for (entry, st) in audit.entries.into_iter().zip(&state) {
                if *st == Erased::Erased {
                    entries.push(entry);
                }
            }
            if !entries.is_empty() {
                append_audit_in(&mut tx, entries, audit.chain)
                    .await
                    .map_err(|e| backend(&e))?;
            }
            tx.commit().await.map_err(|e| backend(&e))?;
            crate::subjects::after_erasure!($mode, self, batch, state);
            Ok(state)
        }

        async fn held(
            &self,
            id: SubjectId,
        ) -> Result<Option<steward_core::store::Hold>, StoreError> {
            use crate::convert::backend;
            use crate::subjects::stmt;
            let key: Option<(i64, Vec<u8>)> = sqlx::query_as(stmt!(
                $sql,
                $kp,
                "SELECT kek_version, wrapped FROM {p}hold_keys WHERE subject = ?"
            ))
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.$keys)
            .await
            .map_err(|e| backend(&e))?;
            let Some((kek_version, wrapped)) = key else {
                return Ok(None);
            };
            let rows: Vec<crate::convert::HeldRow> = sqlx::query_as(stmt!(
                $sql,
                $p,
                "SELECT id, category, purpose, source, collected_at, sealed, reason, hold_until FROM {p}held_fields WHERE subject = ? ORDER BY collected_at, id"
            ))
            .bind(id.as_bytes().as_slice())
            .fetch_all(&self.$data)
            .await
            .map_err(|e| backend(&e))?;
            let fields = rows
                .into_iter()
                .map(crate::convert::held_field)
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(steward_core::store::Hold {
                key: steward_crypto::WrappedKey {
                    kek_version: crate::convert::version(kek_version)?,
                    bytes: wrapped,
                },
                fields,
            }))
        }
    };
}

/// Runs `$body` with `$tx` bound to the transaction the keys are written in: `split`, one of
/// their own on `$pool`, committed before the data's; `joint`, the data's own.
macro_rules! with_keys {
    (split, $pool:expr, $data:ident, |$tx:ident| $body:block) => {{
        let mut own = $pool
            .begin()
            .await
            .map_err(|e| crate::convert::backend(&e))?;
        {
            let $tx = &mut own;
            let written: Result<(), sqlx::Error> = async { $body }.await;
            written.map_err(|e| crate::convert::backend(&e))?;
        }
        own.commit()
            .await
            .map_err(|e| crate::convert::backend(&e))?;
    }};
    (joint, $pool:expr, $data:ident, |$tx:ident| $body:block) => {{
        let $tx = &mut $data;
        let written: Result<(), sqlx::Error> = async { $body }.await;
        written.map_err(|e| crate::convert::backend(&e))?;
    }};
}

/// In the keys' transaction (`split`): mark the erasure begun, with what its hold keeps,
/// so that it is finished should the data's transaction never commit.
macro_rules! mark_erasure {
    (split, $db:ty, $kp:literal, $keys:ident, $e:ident) => {
        mark($keys, $kp, $e).await?;
    };
    (joint, $db:ty, $kp:literal, $keys:ident, $e:ident) => {};
}

/// After an erasure's data committed (`split`): clear its marks (should that fail, the next
/// [`crate::SqliteStore`]'s `finish_interrupted` finds nothing left to delete and clears them).
macro_rules! after_erasure {
    (split, $s:ident, $batch:ident, $state:ident) => {
        let mut erased = Vec::new();
        for (e, st) in $batch.iter().zip(&$state) {
            if *st == steward_core::store::Erased::Erased {
                erased.push(e.subject);
            }
        }
        let _ = $s.clear_marks(erased).await;
    };
    (joint, $s:ident, $batch:ident, $state:ident) => {};
}

/// Rows per multi-row `INSERT` (SQLite takes 32,766 parameters a statement, PostgreSQL
/// 65,535; a field row has 7).
pub(crate) const ROWS: usize = 500;

/// Expands, in a backend's module, to the vault's helpers for its database `$db`:
/// `insert_fields`, `insert_held`, `delete_rows` and `mark`.
macro_rules! vault_fns {
    ($db:ty) => {
        /// Inserts `fields` (each with its subject) in `tx`, a statement per [`ROWS`].
        async fn insert_fields(
            tx: &mut sqlx::Transaction<'static, $db>,
            prefix: &str,
            fields: &[(steward_core::SubjectId, &steward_core::store::SealedField)],
        ) -> Result<(), sqlx::Error>
        {
            for chunk in fields.chunks(crate::subjects::ROWS) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {prefix}fields (id, subject, category, purpose, source, collected_at, sealed) "
                ));
                q.push_values(chunk, |mut b, (subject, f)| {
                    b.push_bind(f.id.as_bytes().to_vec())
                        .push_bind(subject.as_bytes().to_vec())
                        .push_bind(f.category.clone())
                        .push_bind(f.purpose.clone())
                        .push_bind(f.source.clone())
                        .push_bind(crate::convert::to_nanos(f.collected_at))
                        .push_bind(f.sealed.clone());
                });
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Inserts the fields a hold keeps into `{prefix}{table}` (`held_fields`, or SQLite's
        /// `erasure_held_fields` while an erasure is under way), skipping rows already there.
        async fn insert_held(
            tx: &mut sqlx::Transaction<'static, $db>,
            prefix: &str,
            table: &str,
            subject: steward_core::SubjectId,
            fields: &[steward_core::store::HeldField],
        ) -> Result<(), sqlx::Error>
        {
            use crate::convert::to_nanos;
            for chunk in fields.chunks(crate::subjects::ROWS) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {prefix}{table} (id, subject, category, purpose, source, collected_at, sealed, reason, hold_until) "
                ));
                q.push_values(chunk, |mut b, held| {
                    let f = &held.field;
                    b.push_bind(f.id.as_bytes().to_vec())
                        .push_bind(subject.as_bytes().to_vec())
                        .push_bind(f.category.clone())
                        .push_bind(f.purpose.clone())
                        .push_bind(f.source.clone())
                        .push_bind(to_nanos(f.collected_at))
                        .push_bind(f.sealed.clone())
                        .push_bind(held.reason.clone())
                        .push_bind(held.until.map(to_nanos));
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Deletes an erased subject's rows in `tx`, keeping what `hold` keeps: its fields
        /// (sealed under the hold key) and its identities' blind indexes, so that the kept
        /// data can still be found for its own purpose and for the person's access request.
        /// `false`, writing nothing, when the subject's rows are gone already.
        async fn delete_rows(
            tx: &mut sqlx::Transaction<'static, $db>,
            prefix: &str,
            subject: steward_core::SubjectId,
            hold: Option<&steward_core::store::Hold>,
        ) -> Result<bool, sqlx::Error> {
            let id = subject.as_bytes().to_vec();
            if hold.is_some() {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {prefix}held_identities (subject, kind, idx) SELECT subject, kind, idx FROM {prefix}identities WHERE subject = "
                ));
                q.push_bind(id.clone()).push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }
            let mut q =
                sqlx::QueryBuilder::<$db>::new(format!("DELETE FROM {prefix}subjects WHERE id = "));
            q.push_bind(id);
            if q.build().execute(&mut **tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            if let Some(hold) = hold {
                insert_held(tx, prefix, "held_fields", subject, &hold.fields).await?;
            }
            Ok(true)
        }

        /// Marks `e` begun in `keys.db`, with the fields its hold keeps (see the module's text).
        #[allow(dead_code)] // only where the keys are apart (SQLite)
        async fn mark(
            keys: &mut sqlx::Transaction<'static, $db>,
            prefix: &str,
            e: &steward_core::store::Erasure,
        ) -> Result<(), sqlx::Error>
        {
            let mut q = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO {prefix}erasures (subject) "));
            q.push_values([e.subject.as_bytes().to_vec()], |mut b, id| {
                b.push_bind(id);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut **keys).await?;
            if let Some(hold) = &e.hold {
                insert_held(keys, prefix, "erasure_held_fields", e.subject, &hold.fields).await?;
            }
            Ok(())
        }
    };
}

pub(crate) use {
    after_erasure, insert_keys, mark_erasure, stmt, subject_methods, vault_fns, with_keys,
};
