//! The store conformance suite on SQLite (always) and PostgreSQL (when `STEWARD_TEST_POSTGRES`
//! is set; each test gets its own database, dropped afterwards), and what only files can show:
//! erasure leaves no readable trace, not even in a backup taken before it.

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod erasure;

use std::future::Future;
use std::sync::Arc;

use steward_core::store::{Hold, SealedField, SubjectRecord};
use steward_core::{Store, StoreError, SubjectId};
use steward_crypto::WrappedKey;
use steward_store::{PgStore, SqliteStore};

/// A store that keeps something alive (a temporary folder, a test database) while in use.
#[derive(Debug)]
pub struct Guarded<S, G> {
    pub store: S,
    _guard: Arc<G>,
}

impl<S: Clone, G> Clone for Guarded<S, G> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            _guard: Arc::clone(&self._guard),
        }
    }
}

impl<S: Store, G: Send + Sync + 'static> Store for Guarded<S, G> {
    fn root(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<WrappedKey>, StoreError>> + Send {
        self.store.root(name)
    }
    fn put_root(
        &self,
        name: &str,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<WrappedKey, StoreError>> + Send {
        self.store.put_root(name, key)
    }
    fn insert_subjects(
        &self,
        subjects: &[SubjectRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.insert_subjects(subjects)
    }
    fn find_subject(
        &self,
        kind: &str,
        index: &[u8; 32],
    ) -> impl Future<Output = Result<Option<SubjectId>, StoreError>> + Send {
        self.store.find_subject(kind, index)
    }
    fn load_subject(
        &self,
        id: SubjectId,
    ) -> impl Future<Output = Result<Option<SubjectRecord>, StoreError>> + Send {
        self.store.load_subject(id)
    }
    fn put_field(
        &self,
        subject: SubjectId,
        field: &SealedField,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.put_field(subject, field)
    }
    fn erase_subject(
        &self,
        id: SubjectId,
        hold: Option<&Hold>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.erase_subject(id, hold)
    }
    fn held(&self, id: SubjectId) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send {
        self.store.held(id)
    }
    fn insert_api_key(
        &self,
        key: &steward_core::api_key::ApiKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.insert_api_key(key)
    }
    fn find_api_key(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Option<steward_core::api_key::ApiKeyRecord>, StoreError>> + Send
    {
        self.store.find_api_key(prefix)
    }
    fn revoke_api_key(
        &self,
        prefix: &str,
        at: time::OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.revoke_api_key(prefix, at)
    }
    fn keys_to_rewrap(
        &self,
        table: steward_core::store::KeyTable,
        version: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(SubjectId, WrappedKey)>, StoreError>> + Send {
        self.store.keys_to_rewrap(table, version, limit)
    }
    fn count_keys_to_rewrap(
        &self,
        table: steward_core::store::KeyTable,
        version: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.store.count_keys_to_rewrap(table, version)
    }
    fn rewrap_keys(
        &self,
        table: steward_core::store::KeyTable,
        keys: &[(SubjectId, WrappedKey)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.rewrap_keys(table, keys)
    }
    fn replace_root(
        &self,
        name: &str,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.replace_root(name, key)
    }
    fn count_subjects(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.store.count_subjects()
    }
}

pub async fn sqlite_store() -> Option<Guarded<SqliteStore, tempfile::TempDir>> {
    let dir = tempfile::Builder::new()
        .prefix("steward-store-")
        .tempdir()
        .unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    Some(Guarded {
        store,
        _guard: Arc::new(dir),
    })
}

/// Drops its test database when the last handle goes.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any async context we can rely on: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url)
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub async fn pg_store() -> Option<Guarded<PgStore, TestDatabase>> {
    let Ok(admin_url) = std::env::var("STEWARD_TEST_POSTGRES") else {
        eprintln!(
            "SKIPPED: PostgreSQL store test — set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres to run it"
        );
        return None;
    };
    let name = format!("steward_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .expect("STEWARD_TEST_POSTGRES is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let guard = TestDatabase {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends in /<database>");
    let store = PgStore::connect(&format!("{base}/{name}")).await.unwrap();
    Some(Guarded {
        store,
        _guard: Arc::new(guard),
    })
}

mod sqlite {
    use super::sqlite_store;
    steward_core::conformance_suite!(sqlite_store());
}

mod postgres {
    use super::pg_store;
    steward_core::conformance_suite!(pg_store());
}
