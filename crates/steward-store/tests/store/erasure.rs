//! Erasure is complete: after it, the person's e-mail and values appear in no database file
//! (data, WAL, key store), and a copy of the data taken before it cannot be read with the
//! key store after it.

use std::path::Path;
use std::sync::Arc;

use steward_core::conformance::{account, cli, clock, declaration, email};
use steward_core::{Store, Vault, VaultError};
use steward_crypto::MasterKey;
use steward_store::SqliteStore;

fn files_contain(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[tokio::test]
async fn erased_subject_is_nowhere_in_the_files_and_unreadable_from_an_old_backup() {
    let master = MasterKey::generate().unwrap();
    let live = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();

    let store = SqliteStore::open(live.path()).await.unwrap();
    let vault = Vault::open(store.clone(), &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    let id = vault
        .create(
            &cli(),
            &account("erin.erased@example.com", "Erin Unforgettable"),
        )
        .await
        .unwrap();
    let other = vault
        .create(&cli(), &account("olga@example.com", "Olga Stays"))
        .await
        .unwrap();
    drop(vault);
    store.close().await;

    // Sealed from the start: the plaintext never reaches the disk.
    let files = std::fs::read_dir(live.path()).unwrap().count();
    assert!(files >= 2, "steward.db and keys.db");
    for needle in [
        "erin.erased@example.com",
        "Erin Unforgettable",
        "Olga Stays",
    ] {
        assert_eq!(
            files_contain(live.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }

    // A backup of the data alone, taken before the erasure.
    std::fs::copy(
        live.path().join("steward.db"),
        backup.path().join("steward.db"),
    )
    .unwrap();

    let store = SqliteStore::open(live.path()).await.unwrap();
    let vault = Vault::open(store.clone(), &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    let receipt = vault.erase(&cli(), id).await.unwrap();
    assert!(receipt.retained.is_empty());
    drop(vault);
    store.close().await;
    for needle in ["erin.erased@example.com", "Erin Unforgettable"] {
        assert_eq!(
            files_contain(live.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }

    // The old data with today's key store: the rows are there, their key is not.
    std::fs::copy(live.path().join("keys.db"), backup.path().join("keys.db")).unwrap();
    let restored = SqliteStore::open(backup.path()).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM fields WHERE subject = ?")
        .bind(id.as_bytes().as_slice())
        .fetch_one(
            &sqlx::sqlite::SqlitePool::connect(&format!(
                "sqlite://{}",
                backup.path().join("steward.db").display()
            ))
            .await
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        rows > 0,
        "the backup still holds the erased subject's sealed rows"
    );
    let vault = Vault::open(restored.clone(), &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    assert!(
        restored.load_subject(id).await.unwrap().is_none(),
        "no key, so no subject"
    );
    assert!(matches!(
        vault.read(&cli(), id, "accounts", &[]).await,
        Err(VaultError::NotFound)
    ));
    // Everyone else in the backup is intact.
    let view = vault.read(&cli(), other, "accounts", &[]).await.unwrap();
    assert!(view.fields.iter().any(|f| f.value == "Olga Stays"));
    assert_eq!(
        vault
            .lookup(&cli(), &email("olga@example.com"), None)
            .await
            .unwrap(),
        Some(other)
    );
}

#[tokio::test]
async fn a_data_store_without_its_key_store_reads_nothing() {
    let master = MasterKey::generate().unwrap();
    let live = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(live.path()).await.unwrap();
    let vault = Vault::open(store.clone(), &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    let id = vault
        .create(&cli(), &account("pat@example.com", "Pat"))
        .await
        .unwrap();
    drop(vault);
    store.close().await;
    // Only the data file is copied: the key store (and its index root) stays behind.
    let stolen = tempfile::tempdir().unwrap();
    std::fs::copy(
        live.path().join("steward.db"),
        stolen.path().join("steward.db"),
    )
    .unwrap();
    let store = SqliteStore::open(stolen.path()).await.unwrap();
    let vault = Vault::open(store, &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    assert_eq!(
        vault
            .lookup(&cli(), &email("pat@example.com"), None)
            .await
            .unwrap(),
        None,
        "a fresh index root finds nothing"
    );
    assert!(matches!(
        vault.read(&cli(), id, "accounts", &[]).await,
        Err(VaultError::NotFound)
    ));
}
