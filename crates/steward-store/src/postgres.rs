//! PostgreSQL, for scale: data in the `steward` schema, wrapped keys in `steward_keys` (back
//! them up separately), each operation one transaction across both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use steward_core::audit::{AuditFilter, Seal, SealedEntry};
use steward_core::consent::{Party, SealedEvent};
use steward_core::ledger::PolicyVersion;
use steward_core::store::KeyTable;
use steward_core::store::{
    AccessStore, AuditStore, Backend, ConsentStore, RequestStore, VaultStore,
};
use steward_core::{StoreError, SubjectId};
use steward_crypto::WrappedKey;

use crate::convert::backend;

/// PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The connection holding Steward's advisory lock (see [`crate::Sharing`]), closed with
    /// the last clone.
    lock: std::sync::Arc<tokio::sync::Mutex<Held>>,
    /// What this process knows of API-key revocations (see `api_keys_generation`).
    keys_watch: std::sync::Arc<KeysWatch>,
}

/// API-key revocations as this process hears of them: a counter bumped by its own
/// revocations and by every `NOTIFY steward_api_keys` (a trigger on the key table sends one
/// whenever a row changes, whoever changes it), and whether the listener is connected — while
/// it is not, nobody can tell at once, and nothing is kept.
#[derive(Debug, Default)]
struct KeysWatch {
    generation: AtomicU64,
    listening: AtomicBool,
    started: AtomicBool,
}

/// The channel the key table's trigger notifies (migration 0014).
const KEYS_CHANNEL: &str = "steward_api_keys";

/// Listens on [`KEYS_CHANNEL`] for as long as the pool is open, bumping the generation for
/// every notification and for every reconnection (notifications may have been missed).
async fn watch_api_keys(pool: PgPool, watch: std::sync::Arc<KeysWatch>) {
    while !pool.is_closed() {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(KEYS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        if let Ok(mut listener) = listening {
            watch.generation.fetch_add(1, Ordering::SeqCst);
            watch.listening.store(true, Ordering::SeqCst);
            // `Ok(None)`: the connection was lost and is being made again.
            while listener.try_recv().await.is_ok() {
                watch.generation.fetch_add(1, Ordering::SeqCst);
            }
            watch.listening.store(false, Ordering::SeqCst);
            watch.generation.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The connection holding the advisory lock, and how to take it again.
#[derive(Debug)]
struct Held {
    connection: Option<sqlx::PgConnection>,
    url: String,
    sharing: crate::Sharing,
}

/// Takes Steward's advisory lock on `connection` as `sharing` says; `false` when another
/// process holds it the other way.
async fn take_lock(
    connection: &mut sqlx::PgConnection,
    sharing: crate::Sharing,
) -> Result<bool, StoreError> {
    let statement = match sharing {
        crate::Sharing::Shared => "SELECT pg_try_advisory_lock_shared($1)",
        crate::Sharing::Exclusive => "SELECT pg_try_advisory_lock($1)",
    };
    sqlx::query_scalar(statement)
        .bind(crate::lock::PG_LOCK_KEY)
        .fetch_one(connection)
        .await
        .map_err(|e| backend(&e))
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies the migrations. The database is held
    /// shared, beside other processes, for as long as the store is open.
    ///
    /// # Errors
    /// [`StoreError::InUse`] while a command that needs the database to itself runs;
    /// [`StoreError::Backend`] when it cannot connect or migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_as(url, crate::Sharing::Shared).await
    }

    /// Connects shared or alone ([`crate::Sharing`]): a session-level advisory lock on a
    /// connection of its own; `Exclusive` is refused with [`StoreError::InUse`] while any
    /// other process has the database open.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub async fn connect_as(url: &str, sharing: crate::Sharing) -> Result<Self, StoreError> {
        use sqlx::Connection as _;
        let mut lock = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        if !take_lock(&mut lock, sharing).await? {
            let database: String = sqlx::query_scalar("SELECT current_database()")
                .fetch_one(&mut lock)
                .await
                .map_err(|e| backend(&e))?;
            return Err(crate::lock::in_use(
                &format!("the PostgreSQL database `{database}`"),
                sharing,
            ));
        }
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
        Ok(Self {
            pool,
            lock: std::sync::Arc::new(tokio::sync::Mutex::new(Held {
                connection: Some(lock),
                url: url.to_owned(),
                sharing,
            })),
            keys_watch: std::sync::Arc::default(),
        })
    }

    /// Closes the pool, and with the last clone the connection holding the lock.
    pub async fn close(self) {
        self.pool.close().await;
        // The last clone lets go of the advisory lock at once, rather than when the server
        // notices the connection is gone.
        if let Ok(lock) = std::sync::Arc::try_unwrap(self.lock)
            && let Some(mut connection) = lock.into_inner().connection
        {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut connection)
                .await;
            let _ = sqlx::Connection::close(connection).await;
        }
    }

    /// This process's own revocation: known here at once, before the notification comes.
    #[allow(clippy::unnecessary_wraps)] // as `SqliteStore::api_keys_changed`, which can fail
    fn api_keys_changed(&self) -> Result<(), StoreError> {
        self.keys_watch.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The revocations heard of, once the listener (started on the first call, inside a
    /// Tokio runtime) is connected; `None` until then and whenever it is not.
    fn api_keys_seen(&self) -> Option<u64> {
        let watch = &self.keys_watch;
        if !watch.started.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(watch_api_keys(
                        self.pool.clone(),
                        std::sync::Arc::clone(watch),
                    ));
                }
                Err(_) => watch.started.store(false, Ordering::SeqCst),
            }
        }
        watch
            .listening
            .load(Ordering::SeqCst)
            .then(|| watch.generation.load(Ordering::SeqCst))
    }

    /// PostgreSQL keeps no copy a checkpoint can drop: a destroyed key's old row version is
    /// removed by (auto)vacuum. Nothing to do here.
    #[allow(clippy::unused_async)]
    pub(crate) async fn forget_erased_keys(&self) {}

    /// A transaction; PostgreSQL locks rows as they are written, and the chains take their
    /// advisory locks ([`lock_audit`], [`lock_consent`]).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(|e| backend(&e))
    }
}

/// One audit writer at a time, across processes: the head is read under this lock, held to
/// the end of the transaction.
async fn lock_audit(tx: &mut Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(7310001)")
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// One consent-ledger writer at a time, as [`lock_audit`].
async fn lock_consent(tx: &mut Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(7310002)")
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

crate::subjects::vault_fns!(Postgres);
crate::chains::chain_fns!(Postgres, "steward.", crate::access::postgres);

impl Backend for PgStore {
    async fn shut_down(&self) {
        self.pool.close().await;
    }

    async fn keep_held(&self) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        let mut held = self.lock.lock().await;
        if let Some(connection) = held.connection.as_mut()
            && connection.ping().await.is_ok()
        {
            return Ok(());
        }
        // The connection is gone (a restart, a failover, a terminated backend), and the lock
        // with it: take it again before anything else is written, or say who holds it now.
        held.connection = None;
        let mut connection = sqlx::PgConnection::connect(&held.url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        if !take_lock(&mut connection, held.sharing).await? {
            return Err(crate::lock::in_use("the PostgreSQL database", held.sharing));
        }
        held.connection = Some(connection);
        Ok(())
    }
}

impl AuditStore for PgStore {
    crate::reads::audit_reads!(Postgres, pool, "steward.", crate::access::postgres);
    crate::reads::audit_entries_by_row!(Postgres, pool, "steward.", crate::access::postgres);
    crate::chains::audit_append!(Postgres, pool, "steward.", crate::access::postgres);
}

impl AccessStore for PgStore {
    crate::access::access_methods!(pool, "steward.", crate::access::postgres);
    crate::limits::limit_methods!(Postgres, pool, "steward.");
}

impl VaultStore for PgStore {
    /// One transaction writes a subject's key, data and audit entry: nothing is ever cut off
    /// between two commits.
    async fn finish_interrupted(
        &self,
        _audit: steward_core::store::Audited<'_>,
    ) -> Result<Vec<SubjectId>, StoreError> {
        Ok(Vec::new())
    }

    crate::subjects::subject_methods!(
        Postgres,
        pool,
        "steward.",
        pool,
        "steward_keys.",
        crate::access::postgres,
        joint
    );
    crate::keys::key_methods!(pool, "steward_keys.", crate::access::postgres);
    crate::holds::hold_methods!(Postgres, pool, "steward.", pool, "steward_keys.");
    crate::identities::identity_methods!(Postgres, pool, "steward.");
}

impl steward_core::store::RetentionStore for PgStore {
    crate::retention::retention_methods!(Postgres, pool, "steward.");
}

impl ConsentStore for PgStore {
    crate::reads::consent_reads!(Postgres, pool, "steward.", crate::access::postgres);
    crate::reads::consent_events_by_row!(Postgres, pool, "steward.", crate::access::postgres);
    crate::chains::consent_writes!(Postgres, pool, "steward.", crate::access::postgres);
}

impl steward_core::store::DisclosureStore for PgStore {
    crate::incidents::disclosure_methods!(
        Postgres,
        pool,
        "steward.",
        "to_char(to_timestamp({c} / 1000000000) AT TIME ZONE 'UTC', 'YYYY-MM')"
    );
}

impl steward_core::store::IncidentStore for PgStore {
    crate::incidents::incident_methods!(Postgres, pool, "steward.", " FOR UPDATE SKIP LOCKED");
}

impl RequestStore for PgStore {
    crate::requests::request_methods!(Postgres, pool, "steward.", " FOR UPDATE SKIP LOCKED");
    crate::recipients::recipient_methods!(Postgres, pool, "steward.");
}
