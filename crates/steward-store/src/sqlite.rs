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
use sqlx::{Executor, Sqlite, Transaction};
use steward_core::audit::{AuditFilter, Seal, SealedEntry};
use steward_core::consent::{Party, SealedEvent};
use steward_core::ledger::PolicyVersion;
use steward_core::store::Hold;
use steward_core::store::KeyTable;
use steward_core::store::{
    AccessStore, AuditStore, Backend, ConsentStore, RequestStore, VaultStore,
};
use steward_core::{StoreError, SubjectId};
use steward_crypto::WrappedKey;

use crate::convert::{self, backend};

/// SQLite store: data and keys in two files of one folder.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    data: SqlitePool,
    keys: SqlitePool,
    /// The rate-limit counters, in a file of their own (`limits.db`) so that counting never
    /// waits for the data's writer (a look-up counts before it is audited: in `steward.db`
    /// the two took turns at its one write lock, each turn a SQLite busy-wait of 1–100 ms),
    /// written without waiting for the disk (`synchronous = OFF`: a crash may lose the last
    /// counts, never other data), through one connection (this process's counts queue in
    /// the pool, not in SQLite's busy-wait).
    limits: SqlitePool,
    dir: PathBuf,
    /// Held while any clone is open (see [`crate::Sharing`]).
    _lock: crate::lock::FolderLock,
    /// Which files the databases were when opened (device and inode of `steward.db`, `keys.db` and
    /// `limits.db`): a file removed or replaced under a running process is noticed.
    files: [(u64, u64); 3],
}

/// `limits.db`: counters shared by every process on this data folder — a keyed hash of what
/// is counted (never an address, an identity or a name), the end of its current window, and
/// the count in it. Nothing else is kept there, so it needs no migrations. Like the other two
/// files it is watched while a process has it open (`keep_held`): one removed under a running
/// server would split the budget between that server and the next.
const LIMITS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS rate_limits (
    key BLOB PRIMARY KEY,
    window_end INTEGER NOT NULL,
    count INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_limits_by_end ON rate_limits (window_end);";

/// The device and inode of each database file, in the order of [`SqliteStore::files`].
fn identify(dir: &Path) -> Result<[(u64, u64); 3], String> {
    let one = |name: &str| {
        let path = dir.join(name);
        std::fs::metadata(&path)
            .map(|m| {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt as _;
                    (m.dev(), m.ino())
                }
                #[cfg(not(unix))]
                {
                    (0, u64::from(m.len() > 0))
                }
            })
            .map_err(|e| format!("{} is gone: {e}", path.display()))
    };
    Ok([one("steward.db")?, one("keys.db")?, one("limits.db")?])
}

async fn pool(path: &Path) -> Result<SqlitePool, StoreError> {
    pool_with(path, SqliteSynchronous::Full, 8).await
}

async fn pool_with(
    path: &Path,
    synchronous: SqliteSynchronous,
    connections: u32,
) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|e| backend(&e))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("secure_delete", "ON");
    SqlitePoolOptions::new()
        .max_connections(connections)
        .after_release(|connection, _| Box::pin(async move { Ok(settled(connection)) }))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))
}

/// Whether a connection handed back is fit to serve again: not left inside a transaction.
///
/// A `COMMIT` that fails — the disk full, an I/O error — may or may not end the transaction
/// (SQLite rolls some back on its own), and sqlx then believes one still open: the next
/// "transaction" on that connection would be a savepoint inside it, whose "commit" writes
/// nothing to disk, and `BEGIN IMMEDIATE` would be refused until a restart. Such a
/// connection is closed (which rolls back whatever it held) and a new one opened.
fn settled(connection: &mut sqlx::SqliteConnection) -> bool {
    !sqlx::Connection::is_in_transaction(connection)
}

/// Makes both databases and their write-ahead logs readable by their owner only (SQLite
/// creates a WAL with its database's mode), creating the databases empty if they are new.
///
/// Only ever before this process opens a connection: closing any descriptor of a file drops
/// every POSIX lock the process holds on it, and SQLite's locks are POSIX locks — had a
/// connection been open, another process could then take the database for unused and delete
/// a write-ahead log still in use.
fn private_files(dir: &Path) -> Result<(), StoreError> {
    for db in ["steward.db", "keys.db", "limits.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.join(format!("{db}{suffix}"));
            if suffix.is_empty() || file.exists() {
                steward_core::files::private_file(&file).map_err(|e| {
                    StoreError::Backend(format!("cannot create {}: {e}", file.display()))
                })?;
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir` and applies its migrations.
    ///
    /// The folder is held shared, beside other processes, for as long as the store is open.
    ///
    /// # Errors
    /// [`StoreError::InUse`] while a command that needs the folder to itself runs;
    /// [`StoreError::Backend`] when the folder or a database cannot be created or migrated.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_as(dir, crate::Sharing::Shared).await
    }

    /// Opens the store in `dir` shared or alone ([`crate::Sharing`]); `Exclusive` is refused
    /// with [`StoreError::InUse`] while any other process has the folder open.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_as(dir: &Path, sharing: crate::Sharing) -> Result<Self, StoreError> {
        steward_core::files::private_dir(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let lock = crate::lock::FolderLock::take(dir, sharing)?;
        private_files(dir)?;
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
        let limits = pool_with(&dir.join("limits.db"), SqliteSynchronous::Off, 1).await?;
        sqlx::raw_sql(LIMITS_SCHEMA)
            .execute(&limits)
            .await
            .map_err(|e| StoreError::Backend(format!("creating limits.db: {e}")))?;
        let store = Self {
            data,
            keys,
            limits,
            dir: dir.to_owned(),
            _lock: lock,
            files: identify(dir).map_err(StoreError::Backend)?,
        };
        Ok(store)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file whose length counts API-key revocations, in this process and every other
    /// sharing the folder (one byte appended per revocation: its length only grows).
    fn api_keys_marker(&self) -> PathBuf {
        self.dir.join("api-keys.changed")
    }

    /// Tells every process sharing the folder that an API key changed: one byte appended to
    /// [`SqliteStore::api_keys_marker`] (created 0600).
    fn api_keys_changed(&self) -> Result<(), StoreError> {
        use std::io::Write as _;
        let path = self.api_keys_marker();
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        options
            .open(&path)
            .and_then(|mut f| f.write_all(b"."))
            .map_err(|e| StoreError::Backend(format!("cannot write {}: {e}", path.display())))
    }

    /// The marker's length (0 before the first revocation), or `None` when it cannot be read.
    fn api_keys_seen(&self) -> Option<u64> {
        match std::fs::metadata(self.api_keys_marker()) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
            Err(_) => None,
        }
    }

    /// Writes the WAL back into the database files and closes the pools (for backups and tests
    /// that inspect the files).
    pub async fn close(self) {
        Backend::shut_down(&self).await;
    }

    /// Takes erased keys out of `keys.db`'s write-ahead log too. `secure_delete` overwrites a
    /// destroyed key in the database file, but until a checkpoint the log still holds the page
    /// as it was: copied while a server runs, the folder would still open the erased person.
    /// A checkpoint that truncates the log leaves no copy; one blocked by a reader is retried
    /// at the next erasure (and by `close`), so the window is as short as readers allow.
    pub(crate) async fn forget_erased_keys(&self) {
        let _ = self.keys.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
    }

    /// A transaction on `steward.db` that holds the write lock from its start (`BEGIN
    /// IMMEDIATE`): no other writer, in this process or another, comes between its reads and
    /// its writes.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.data
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| backend(&e))
    }

    /// Finishes every erasure cut off after its keys went (marked in `keys.db`, see
    /// `crate::subjects`): deletes what is left of the person's rows and stores what their
    /// hold keeps, then clears the marks; returns the subjects whose rows it deleted. Waits for
    /// an erasure under way (it holds the data's write lock from before it marks to after its
    /// rows are gone), so it never races one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a database cannot be read or written.
    pub(crate) async fn finish_erasures(
        &self,
        audit: steward_core::store::Audited<'_>,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let any: Option<(Vec<u8>,)> = sqlx::query_as("SELECT subject FROM erasures LIMIT 1")
            .fetch_optional(&self.keys)
            .await
            .map_err(|e| backend(&e))?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let mut finished = Vec::new();
        let marked: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT subject FROM erasures")
            .fetch_all(&self.keys)
            .await
            .map_err(|e| backend(&e))?;
        for (subject,) in &marked {
            let id = SubjectId(convert::uuid(subject)?);
            let held: Vec<convert::HeldRow> = sqlx::query_as("SELECT id, category, purpose, source, collected_at, sealed, reason, hold_until FROM erasure_held_fields WHERE subject = ? ORDER BY collected_at, id")
                .bind(subject.as_slice())
                .fetch_all(&self.keys)
                .await
                .map_err(|e| backend(&e))?;
            let fields = held
                .into_iter()
                .map(convert::held_field)
                .collect::<Result<Vec<_>, StoreError>>()?;
            let hold = (!fields.is_empty()).then(|| Hold {
                // Only the fields are written from here; the key is stored already.
                key: WrappedKey {
                    kek_version: 0,
                    bytes: Vec::new(),
                },
                fields,
            });
            if delete_rows(&mut tx, "", id, hold.as_ref())
                .await
                .map_err(|e| backend(&e))?
            {
                finished.push(id);
            }
        }
        // Each erasure finished is recorded with its rows' deletion.
        if let Some(template) = audit.entries.first() {
            let entries: Vec<_> = finished
                .iter()
                .map(|id| {
                    let mut entry = template.clone();
                    entry.subject = Some(*id);
                    entry
                })
                .collect();
            if !entries.is_empty() {
                append_audit_in(&mut tx, entries, audit.chain)
                    .await
                    .map_err(|e| backend(&e))?;
            }
        }
        tx.commit().await.map_err(|e| backend(&e))?;
        let ids = marked
            .iter()
            .map(|(subject,)| convert::uuid(subject).map(SubjectId))
            .collect::<Result<Vec<_>, _>>()?;
        self.clear_marks(ids).await?;
        Ok(finished)
    }

    /// Clears the erasure marks of `subjects` (their rows are gone).
    pub(crate) async fn clear_marks(&self, subjects: Vec<SubjectId>) -> Result<(), StoreError> {
        let mut keys = self.keys.begin().await.map_err(|e| backend(&e))?;
        for subject in subjects {
            let subject = subject.as_bytes().to_vec();
            for table in ["erasure_held_fields", "erasures"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE subject = ?"
                )))
                .bind(subject.as_slice())
                .execute(&mut *keys)
                .await
                .map_err(|e| backend(&e))?;
            }
        }
        keys.commit().await.map_err(|e| backend(&e))
    }
}

/// SQLite serialises writers itself: `BEGIN IMMEDIATE` (see [`SqliteStore::begin_write`])
/// holds the write lock before the head is read.
#[allow(clippy::unused_async)]
async fn lock_audit(_tx: &mut Transaction<'static, Sqlite>) -> Result<(), sqlx::Error> {
    Ok(())
}

/// As [`lock_audit`].
#[allow(clippy::unused_async)]
async fn lock_consent(_tx: &mut Transaction<'static, Sqlite>) -> Result<(), sqlx::Error> {
    Ok(())
}

crate::subjects::vault_fns!(Sqlite);
crate::chains::chain_fns!(Sqlite, "", crate::access::sqlite);

impl Backend for SqliteStore {
    /// A `flock` is the kernel's until the process ends and cannot be lost; but the database
    /// files can be removed or replaced under a running process, which would then write into
    /// files nobody will open again. That is refused.
    async fn keep_held(&self) -> Result<(), StoreError> {
        match identify(&self.dir) {
            Ok(now) if now == self.files => Ok(()),
            Ok(_) => Err(StoreError::Backend(format!(
                "the databases in {} were replaced while this process had them open: what it writes would be lost; stop it and check which files are the real ones",
                self.dir.display()
            ))),
            Err(e) => Err(StoreError::Backend(format!(
                "{e} while this process had it open: what it writes would be lost; stop it and restore the file from a backup"
            ))),
        }
    }

    async fn shut_down(&self) {
        self.limits.close().await;
        for pool in [&self.data, &self.keys] {
            let _ = pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
            pool.close().await;
        }
    }
}

impl AuditStore for SqliteStore {
    crate::reads::audit_reads!(Sqlite, data, "", crate::access::sqlite);

    /// Reads a page as one JSON value that SQLite builds: sqlx hands each SQLite row from its
    /// connection's thread to the caller's task with a wake-up of its own (about 20 µs per
    /// row on a 2-core VM, 20 times what checking the row costs), so one value per page
    /// instead of one row per entry made verifying the trail 3.5 times faster (BENCHMARKS.md,
    /// "The audit trail").
    async fn audit_entries(
        &self,
        after: u64,
        through: u64,
        limit: u32,
    ) -> Result<Vec<SealedEntry>, StoreError> {
        let (page,): (Option<String>,) = sqlx::query_as(crate::convert::AUDIT_PAGE_SQLITE)
            .bind(crate::convert::to_seq(after))
            .bind(crate::convert::to_seq(through))
            .bind(i64::from(limit))
            .fetch_one(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        page.map_or_else(|| Ok(Vec::new()), |p| crate::convert::audit_page(&p))
    }
    crate::chains::audit_append!(Sqlite, data, "", crate::access::sqlite);
}

impl AccessStore for SqliteStore {
    crate::access::access_methods!(data, "", crate::access::sqlite);
    crate::limits::limit_methods!(Sqlite, limits, "");
}

impl VaultStore for SqliteStore {
    async fn finish_interrupted(
        &self,
        audit: steward_core::store::Audited<'_>,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.finish_erasures(audit).await
    }

    crate::subjects::subject_methods!(Sqlite, data, "", keys, "", crate::access::sqlite, split);
    crate::keys::key_methods!(keys, "", crate::access::sqlite);
    crate::holds::hold_methods!(Sqlite, data, "", keys, "");
    crate::identities::identity_methods!(Sqlite, data, "");
}

impl steward_core::store::RetentionStore for SqliteStore {
    crate::retention::retention_methods!(Sqlite, data, "");
}

impl ConsentStore for SqliteStore {
    crate::reads::consent_reads!(Sqlite, data, "", crate::access::sqlite);

    /// Reads a page as one JSON value SQLite builds, as `audit_entries` does (the ledger is
    /// read whole at every start).
    async fn consent_events(&self, after: u64, limit: u32) -> Result<Vec<SealedEvent>, StoreError> {
        let (page,): (Option<String>,) = sqlx::query_as(crate::convert::CONSENT_PAGE_SQLITE)
            .bind(crate::convert::to_seq(after))
            .bind(i64::from(limit))
            .fetch_one(&self.data)
            .await
            .map_err(|e| backend(&e))?;
        page.map_or_else(|| Ok(Vec::new()), |p| crate::convert::consent_page(&p))
    }
    crate::chains::consent_writes!(Sqlite, data, "", crate::access::sqlite);
}

impl steward_core::store::DisclosureStore for SqliteStore {
    crate::incidents::disclosure_methods!(
        Sqlite,
        data,
        "",
        "strftime('%Y-%m', {c} / 1000000000, 'unixepoch')"
    );
}

impl steward_core::store::IncidentStore for SqliteStore {
    crate::incidents::incident_methods!(Sqlite, data, "", "");
}

impl RequestStore for SqliteStore {
    crate::requests::request_methods!(Sqlite, data, "", "");
    crate::recipients::recipient_methods!(Sqlite, data, "");
}
