//! The store conformance suite on SQLite (always) and PostgreSQL (when `STEWARD_TEST_POSTGRES`
//! is set; each test gets its own database, dropped afterwards), and what only files can show:
//! erasure leaves no readable trace, not even in a backup taken before it.

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod erasure;
mod ledger_guard;
mod lock;

use steward_store::{PgStore, SqliteStore};

/// A SQLite store in a temporary folder, and the folder (removed when dropped).
pub async fn sqlite_store() -> Option<(SqliteStore, tempfile::TempDir)> {
    let dir = tempfile::Builder::new()
        .prefix("steward-store-")
        .tempdir()
        .unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    Some((store, dir))
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

/// A PostgreSQL store in a database of its own, and the guard that drops it.
pub async fn pg_store() -> Option<(PgStore, TestDatabase)> {
    let (url, guard) = pg_database().await?;
    let store = PgStore::connect(&url).await.unwrap();
    Some((store, guard))
}

/// A PostgreSQL database of its own (its URL), and the guard that drops it.
pub async fn pg_database() -> Option<(String, TestDatabase)> {
    let Ok(admin_url) = std::env::var("STEWARD_TEST_POSTGRES") else {
        steward_core::conformance::skipped(
            "PostgreSQL",
            "set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres",
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
    Some((format!("{base}/{name}"), guard))
}

mod sqlite {
    use super::sqlite_store;
    steward_core::conformance_suite!(sqlite_store());
}

mod postgres {
    use super::pg_store;
    steward_core::conformance_suite!(pg_store());
}
