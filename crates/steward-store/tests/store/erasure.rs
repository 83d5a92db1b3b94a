//! Erasure is complete: after it, the person's e-mail and values appear in no database file
//! (data, WAL, key store), and a copy of the data taken before it cannot be read with the
//! key store after it.

use std::path::Path;
use std::sync::Arc;
use steward_core::store::prelude::*;

use steward_core::conformance::{account, cli, clock, declaration, email};
use steward_core::ledger::ConsentError;
use steward_core::{Vault, VaultError};
use steward_crypto::MasterKey;
use steward_store::SqliteStore;

fn files_contain(dir: &Path, needle: impl AsRef<[u8]>) -> Vec<String> {
    let needle = needle.as_ref();
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
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
    let ledger = steward_core::conformance::ledger(
        Arc::new(vault),
        Arc::new(steward_core::conformance::KeptMail(std::sync::Mutex::new(
            Vec::new(),
        ))),
    )
    .await;
    let receipt = ledger.erase_one(&cli(), id).await.unwrap();
    assert!(receipt.retained.is_empty());
    drop(ledger);
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
    let ledger = steward_core::conformance::ledger(Arc::new(vault), Arc::default()).await;
    let vault = ledger.vault();
    assert!(
        restored.load_subject(id).await.unwrap().is_none(),
        "no key, so no subject"
    );
    assert!(matches!(
        ledger.read(&cli(), id, "accounts", &[]).await,
        Err(ConsentError::Vault(VaultError::NotFound))
    ));
    // Everyone else in the backup is intact.
    let view = ledger.read(&cli(), other, "accounts", &[]).await.unwrap();
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
    let ledger = steward_core::conformance::ledger(Arc::new(vault), Arc::default()).await;
    assert_eq!(
        ledger
            .vault()
            .lookup(&cli(), &email("pat@example.com"), None)
            .await
            .unwrap(),
        None,
        "a fresh index root finds nothing"
    );
    assert!(matches!(
        ledger.read(&cli(), id, "accounts", &[]).await,
        Err(ConsentError::Vault(VaultError::NotFound))
    ));
}

/// A copy of the folder taken while the store is still open — a server running — must not
/// hold an erased person's key either: not in `keys.db`, not in its write-ahead log.
#[tokio::test]
async fn an_erased_key_is_in_no_file_while_the_store_stays_open() {
    let master = MasterKey::generate().unwrap();
    let live = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(live.path()).await.unwrap();
    let vault = Vault::open(store.clone(), &master, declaration(), Arc::new(clock()))
        .await
        .unwrap();
    let id = vault
        .create(&cli(), &account("wal@example.com", "Wal Ter"))
        .await
        .unwrap();
    vault
        .create(&cli(), &account("stays@example.com", "Stays"))
        .await
        .unwrap();
    let key = store.load_subject(id).await.unwrap().unwrap().key.bytes;
    assert!(
        !files_contain(live.path(), &key).is_empty(),
        "the key is on disk before"
    );
    let record = store.load_subject(id).await.unwrap().unwrap();
    let erased = store
        .erase_subjects(
            &[steward_core::store::Erasure {
                subject: id,
                fields: record.fields.iter().map(|f| f.id).collect(),
                hold: None,
            }],
            steward_core::store::Audited {
                entries: vec![cli().entry("subject.erase", time::OffsetDateTime::UNIX_EPOCH)],
                chain: vault.audit_chain(),
            },
        )
        .await
        .unwrap();
    assert_eq!(erased, [steward_core::store::Erased::Erased]);
    // The store (and the vault over it) are still open, as under a running server.
    assert_eq!(files_contain(live.path(), &key), Vec::<String>::new());
    drop(vault);
}

#[tokio::test]
async fn a_second_erasure_of_an_erased_person_leaves_their_hold_whole() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let vault = Arc::new(
        Vault::open(store.clone(), &master, declaration(), Arc::new(clock()))
            .await
            .unwrap(),
    );
    let id = vault
        .create(
            &cli(),
            &steward_core::NewSubjectInput {
                identities: vec![email("ivo@example.com")],
                fields: vec![("user.financial".into(), "INV-1 CHF 10".into())],
                purpose: "invoicing".into(),
                source: steward_core::FieldSource::Form,
            },
        )
        .await
        .unwrap();
    let ledger = steward_core::conformance::ledger(Arc::clone(&vault), Arc::default()).await;
    let first = ledger.erase(&cli(), &[id]).await.unwrap();
    assert!(first[0].is_ok(), "{first:?}");
    assert_eq!(store.held(id).await.unwrap().unwrap().fields.len(), 1);
    // Again (a request's job and a sweep racing): the same receipt, the hold as it was.
    let second = ledger.erase(&cli(), &[id]).await.unwrap();
    assert!(second[0].is_ok(), "{second:?}");
    assert_eq!(store.held(id).await.unwrap().unwrap().fields.len(), 1);
}
