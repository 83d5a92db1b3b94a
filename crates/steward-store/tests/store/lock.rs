//! A store held alone is refused to everyone else, and a store in use is refused to a command
//! that needs it alone (`steward keys rotate`): on SQLite by a lock on the data folder, on
//! PostgreSQL by an advisory lock; both let go when the store is dropped.

use steward_core::StoreError;
use steward_core::store::prelude::*;
use steward_store::{PgStore, Sharing, SqliteStore};

fn in_use<T: std::fmt::Debug>(opened: Result<T, StoreError>) -> String {
    match opened {
        Err(StoreError::InUse(why)) => why,
        other => panic!("expected the store to be refused as in use, got {other:?}"),
    }
}

#[tokio::test]
async fn a_sqlite_folder_in_use_is_refused_to_a_command_that_needs_it_alone_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(dir.path()).await.unwrap();
    let beside = SqliteStore::open(dir.path()).await.unwrap();
    let why = in_use(SqliteStore::open_as(dir.path(), Sharing::Exclusive).await);
    assert!(why.contains("needs it to itself"), "{why}");
    drop(server);
    drop(beside.clone());
    // One clone still holds it.
    in_use(SqliteStore::open_as(dir.path(), Sharing::Exclusive).await);
    drop(beside);

    let alone = SqliteStore::open_as(dir.path(), Sharing::Exclusive)
        .await
        .unwrap();
    let why = in_use(SqliteStore::open(dir.path()).await);
    assert!(why.contains("`steward keys rotate`"), "{why}");
    drop(alone);
    SqliteStore::open(dir.path()).await.unwrap();
}

#[tokio::test]
async fn a_postgresql_database_in_use_is_refused_to_a_command_that_needs_it_alone_and_back() {
    let Some((url, _guard)) = super::pg_database().await else {
        return;
    };
    let server = PgStore::connect(&url).await.unwrap();
    let why = in_use(PgStore::connect_as(&url, Sharing::Exclusive).await);
    assert!(why.contains("PostgreSQL database"), "{why}");
    server.close().await;

    let alone = PgStore::connect_as(&url, Sharing::Exclusive).await.unwrap();
    in_use(PgStore::connect(&url).await);
    alone.close().await;
    PgStore::connect(&url).await.unwrap();
}

/// A server whose lock connection dies (a restart, a failover, a terminated backend) takes
/// the lock again — and learns it cannot when a rotation took the store meanwhile.
#[tokio::test]
async fn a_postgresql_hold_lost_with_its_connection_is_taken_again_or_reported() {
    let Some((url, _guard)) = super::pg_database().await else {
        return;
    };
    let server = PgStore::connect(&url).await.unwrap();
    let terminate = || async {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let ended: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        admin.close().await;
        assert!(!ended.is_empty(), "a lock to end");
    };
    terminate().await;
    server.keep_held().await.unwrap();
    in_use(PgStore::connect_as(&url, Sharing::Exclusive).await);

    terminate().await;
    let rotation = PgStore::connect_as(&url, Sharing::Exclusive).await.unwrap();
    let why = in_use(server.keep_held().await.map(|()| "held"));
    assert!(why.contains("`steward keys rotate`"), "{why}");
    rotation.close().await;
}
