//! The store conformance suite: one story every backend must pass, run by each store crate
//! against a real database (SQLite always, PostgreSQL when `STEWARD_TEST_POSTGRES` is set).
//!
//! `steward_core::conformance_suite!(make_store())` expands to one `#[tokio::test]` per case;
//! `make_store()` is an expression giving a future of `Option<store>` (`None` skips, loudly).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use steward_crypto::{CryptoError, MasterKey};
use steward_policy::{Declaration, Source};
use time::macros::datetime;

use crate::clock::ManualClock;
use crate::identity::{Identity, IdentityKind};
use crate::store::Store;
use crate::subject::FieldSource;
use crate::vault::{NewSubjectInput, Vault, VaultError};

/// A small shop: accounts, a newsletter, invoices under a legal hold, usernames immutable.
pub const DECLARATION: &str = r#"
[policy]
version = "1"
[controller]
name = "Test Shop"
country = "CH"
email = "privacy@shop.example"
[[purposes]]
id = "accounts"
name = "Accounts"
use = "essential.service"
basis = "contract"
categories = ["user.contact.email", "user.account.username", "user.name", "user.contact.address", "user.contact.phone_number"]
subjects = ["customer"]
retention = "45 to 60 days after account closure"
[[purposes]]
id = "newsletter"
name = "Newsletter"
use = "marketing.communications.email"
basis = "consent"
consent = "double-opt-in"
categories = ["user.contact.email"]
subjects = ["customer"]
retention = "until consent is withdrawn"
[[purposes]]
id = "invoicing"
name = "Invoices"
use = "finance"
basis = "legal-obligation"
categories = ["user.financial", "user.name", "user.contact.email"]
subjects = ["customer"]
retention = "10 years after collection"
legal_hold = true
hold_reason = "accounting law requires invoices for 10 years"
[rights]
deadline = "1 month"
immutable = ["user.account.username"]
"#;

pub fn declaration() -> Arc<Declaration> {
    let source = Source::new("conformance.toml", DECLARATION);
    Arc::new(
        steward_policy::check(&source)
            .expect("readable")
            .declaration
            .expect("valid"),
    )
}

pub fn clock() -> ManualClock {
    ManualClock::new(datetime!(2026-11-22 10:00 UTC))
}

pub fn email(value: &str) -> Identity {
    Identity::parse(IdentityKind::Email, value).unwrap()
}

pub fn account(address: &str, name: &str) -> NewSubjectInput {
    NewSubjectInput {
        identities: vec![email(address)],
        fields: vec![
            ("user.name".into(), name.into()),
            (
                "user.contact.address".into(),
                "1 Rue du Lac, 1260 Nyon".into(),
            ),
        ],
        purpose: "accounts".into(),
        source: FieldSource::Form,
    }
}

pub async fn vault<S: Store>(store: S, master: &MasterKey) -> Vault<S> {
    Vault::open(store, master, declaration(), Arc::new(clock()))
        .await
        .unwrap()
}

pub async fn creates_finds_and_reads_a_subject<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&account("Alice@Example.com", "Alice Martin"))
        .await
        .unwrap();
    assert_eq!(
        v.lookup(&email("  alice@example.COM ")).await.unwrap(),
        Some(id),
        "normalised lookup"
    );
    assert_eq!(v.lookup(&email("bob@example.com")).await.unwrap(), None);
    let view = v.read(id, "accounts").await.unwrap();
    assert_eq!(
        view.identities,
        vec![("email".to_owned(), "alice@example.com".to_owned())]
    );
    let name = view
        .fields
        .iter()
        .find(|f| f.category == "user.name")
        .unwrap();
    assert_eq!(name.value, "Alice Martin");
    assert_eq!(
        (name.purpose.as_str(), name.source.as_str()),
        ("accounts", "form")
    );
    assert_eq!(name.collected_at, datetime!(2026-11-22 10:00 UTC));
    assert_eq!(v.store().count_subjects().await.unwrap(), 1);
}

pub async fn values_are_stored_sealed<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&account("carol@example.com", "Carol Secret-Name"))
        .await
        .unwrap();
    let stored = v.store().load_subject(id).await.unwrap().unwrap();
    for field in &stored.fields {
        assert!(!String::from_utf8_lossy(&field.sealed).contains("Secret-Name"));
        assert_eq!(field.sealed[0], 1, "envelope version");
    }
    for identity in &stored.identities {
        assert!(!String::from_utf8_lossy(&identity.sealed).contains("carol@example.com"));
    }
}

pub async fn a_second_subject_with_the_same_identity_is_refused<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    v.create(&account("dan@example.com", "Dan")).await.unwrap();
    let err = v
        .create(&account("DAN@example.com", "Dan again"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::Duplicate { ref kind } if kind == "email"),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("dan@"),
        "no personal data in errors: {err}"
    );
    assert_eq!(v.store().count_subjects().await.unwrap(), 1);
}

pub async fn a_failed_batch_writes_nothing<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let batch = [
        account("e1@example.com", "E1"),
        account("e2@example.com", "E2"),
        account("e1@example.com", "E1 twice"),
    ];
    let prepared: Vec<_> = batch.iter().map(|i| v.prepare(i).unwrap()).collect();
    let err = v.store().insert_subjects(&prepared).await.unwrap_err();
    assert!(
        matches!(err, crate::StoreError::Duplicate { .. }),
        "{err:?}"
    );
    assert_eq!(v.store().count_subjects().await.unwrap(), 0);
    assert_eq!(v.lookup(&email("e2@example.com")).await.unwrap(), None);
    // The same batch without the duplicate goes in whole.
    v.store().insert_subjects(&prepared[..2]).await.unwrap();
    assert_eq!(v.store().count_subjects().await.unwrap(), 2);
}

pub async fn concurrent_creates_of_one_identity_give_one_subject_and_one_conflict<S: Store>(
    store: S,
) {
    let master = MasterKey::generate().unwrap();
    let v = Arc::new(vault(store, &master).await);
    let (a, b) = (Arc::clone(&v), Arc::clone(&v));
    let first = tokio::spawn(async move { a.create(&account("frank@example.com", "Frank")).await });
    let second =
        tokio::spawn(async move { b.create(&account("frank@example.com", "Frank")).await });
    let results = [first.await.unwrap(), second.await.unwrap()];
    let created = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(VaultError::Duplicate { .. })))
        .count();
    assert_eq!((created, conflicts), (1, 1), "{results:?}");
    assert_eq!(v.store().count_subjects().await.unwrap(), 1);
}

pub async fn a_purpose_sees_only_its_categories<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&account("gina@example.com", "Gina"))
        .await
        .unwrap();
    let view = v.read(id, "newsletter").await.unwrap();
    assert_eq!(
        view.identities.len(),
        1,
        "the newsletter covers the e-mail address"
    );
    assert!(
        view.fields.is_empty(),
        "but not the name or address: {view:?}"
    );
    assert!(matches!(
        v.read(id, "marketing").await,
        Err(VaultError::UnknownPurpose(_))
    ));
}

pub async fn undeclared_or_disallowed_data_is_refused<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let mut input = account("hal@example.com", "Hal");
    input.fields.push(("user.financial".into(), "IBAN".into()));
    assert!(matches!(
        v.create(&input).await,
        Err(VaultError::NotCollected { .. })
    ));
    let mut input = account("hal@example.com", "Hal");
    input.fields.push(("user.contact.emial".into(), "x".into()));
    assert!(matches!(
        v.create(&input).await,
        Err(VaultError::UnknownCategory(_))
    ));
    let mut input = account("hal@example.com", "Hal");
    input.purpose = "nope".into();
    assert!(matches!(
        v.create(&input).await,
        Err(VaultError::UnknownPurpose(_))
    ));
    let mut input = account("hal@example.com", "Hal");
    input.fields.push((
        "user.contact.address".into(),
        "x".repeat(crate::vault::MAX_VALUE_BYTES + 1),
    ));
    assert!(matches!(
        v.create(&input).await,
        Err(VaultError::TooLarge { .. })
    ));
    let mut input = account("hal@example.com", "Hal");
    input.source = FieldSource::ThirdParty("data-broker".into());
    assert!(matches!(
        v.create(&input).await,
        Err(VaultError::UnknownSource(_))
    ));
    assert_eq!(
        v.store().count_subjects().await.unwrap(),
        0,
        "nothing written"
    );
}

pub async fn rectification_changes_values_but_never_immutable_ones<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let mut input = account("ines@example.com", "Ines");
    input
        .identities
        .push(Identity::parse(IdentityKind::Username, "ines").unwrap());
    input
        .fields
        .push(("user.account.username".into(), "ines".into()));
    let id = v.create(&input).await.unwrap();
    v.rectify(
        id,
        "user.name",
        "Inès Dupont",
        "accounts",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let view = v.read(id, "accounts").await.unwrap();
    let names: Vec<&str> = view
        .fields
        .iter()
        .filter(|f| f.category == "user.name")
        .map(|f| f.value.as_str())
        .collect();
    assert_eq!(names, ["Inès Dupont"]);
    let err = v
        .rectify(
            id,
            "user.account.username",
            "ines2",
            "accounts",
            &FieldSource::Api,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Immutable(_)));
    assert!(err.to_string().contains("can never be changed"), "{err}");
}

pub async fn erasure_removes_all_but_legal_holds_and_gives_a_receipt<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&account("jo@example.com", "Jo Invoice"))
        .await
        .unwrap();
    // The invoice joins the same subject, collected under the invoicing purpose.
    v.rectify(
        id,
        "user.financial",
        "Invoice 2026-17: CHF 120",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let receipt = v.erase(id).await.unwrap();
    assert_eq!(receipt.subject, id);
    assert!(
        receipt.removed.contains(&"user.contact.email".to_owned())
            && receipt.removed.contains(&"user.name".to_owned()),
        "{receipt:?}"
    );
    assert_eq!(receipt.retained.len(), 1, "{receipt:?}");
    assert_eq!(receipt.retained[0].category, "user.financial");
    assert_eq!(
        receipt.retained[0].reason,
        "accounting law requires invoices for 10 years"
    );
    assert_eq!(
        receipt.retained[0].until,
        Some(datetime!(2036-11-22 10:00 UTC))
    );
    assert_eq!(receipt.digest.len(), 64);
    let text = serde_json::to_string(&receipt).unwrap();
    assert!(
        !text.contains("jo@") && !text.contains("Jo Invoice") && !text.contains("CHF"),
        "no personal data in the receipt: {text}"
    );
    assert_eq!(v.lookup(&email("jo@example.com")).await.unwrap(), None);
    assert!(matches!(
        v.read(id, "accounts").await,
        Err(VaultError::NotFound)
    ));
    assert!(v.store().load_subject(id).await.unwrap().is_none());
    let held = v.read_held(id).await.unwrap();
    assert_eq!(
        held.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(),
        ["Invoice 2026-17: CHF 120"]
    );
    assert!(
        matches!(v.erase(id).await, Err(VaultError::NotFound)),
        "erasing twice"
    );
    // The address can be used again by someone new.
    v.create(&account("jo@example.com", "New Jo"))
        .await
        .unwrap();
}

pub async fn a_wrong_master_key_is_an_explicit_error<S: Store + Clone>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    v.create(&account("kim@example.com", "Kim")).await.unwrap();
    let wrong = MasterKey::generate().unwrap();
    let Err(err) = Vault::open(store, &wrong, declaration(), Arc::new(clock())).await else {
        panic!("a wrong master key opened the vault");
    };
    assert!(
        matches!(err, VaultError::Crypto(CryptoError::WrongMasterKey)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("master key does not match"),
        "{err}"
    );
}

pub async fn api_keys_are_stored_hashed_and_revoked_at_once<S: Store>(store: S) {
    use crate::api_key::{NewApiKey, Role};
    let now = datetime!(2026-11-22 10:00 UTC);
    let key = NewApiKey::generate(Role::Service, "shop backend", now).unwrap();
    store.insert_api_key(&key.record).await.unwrap();
    let found = store
        .find_api_key(&key.record.prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, key.record);
    assert!(found.accepts(&key.secret));
    assert!(store.revoke_api_key(&key.record.prefix, now).await.unwrap());
    assert!(
        !store.revoke_api_key(&key.record.prefix, now).await.unwrap(),
        "already revoked"
    );
    let found = store
        .find_api_key(&key.record.prefix)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !found.accepts(&key.secret),
        "a revoked key is refused at once"
    );
    assert!(store.find_api_key("stw_00000000").await.unwrap().is_none());
}

pub async fn keys_rotate_without_touching_data_and_resume_after_an_interruption<
    S: Store + Clone,
>(
    store: S,
) {
    use crate::rotation::rotate_keys;
    use crate::store::KeyTable;
    let old = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &old).await;
    let ids: Vec<_> = futures_ids(&v, 5).await;
    v.rectify(
        ids[0],
        "user.financial",
        "Invoice 9",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    v.erase(ids[0]).await.unwrap();
    let before = v.store().load_subject(ids[1]).await.unwrap().unwrap();
    let new = MasterKey::generate().unwrap();
    // An interrupted run: one key re-wrapped by hand under generation 2.
    let first = store.keys_to_rewrap(KeyTable::Subject, 2, 1).await.unwrap();
    let ring_old = steward_crypto::Keyring::new(&old, 1);
    let ring_new = steward_crypto::Keyring::new(&new, 2);
    let key = ring_old
        .unwrap_subject_key(first[0].0.as_bytes(), &first[0].1)
        .unwrap();
    store
        .rewrap_keys(
            KeyTable::Subject,
            &[(
                first[0].0,
                ring_new
                    .wrap_subject_key(first[0].0.as_bytes(), &key)
                    .unwrap(),
            )],
        )
        .await
        .unwrap();
    let mut reports = Vec::new();
    let rotated = rotate_keys(&store, &old, &new, 2, |done, total| {
        reports.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!(rotated.generation, 2);
    assert_eq!(
        rotated.rewrapped, 4,
        "three subject keys left + one hold key"
    );
    assert_eq!(reports.last(), Some(&(4, 4)));
    let after = store.load_subject(ids[1]).await.unwrap().unwrap();
    assert_eq!(before.fields, after.fields, "no data rewritten");
    assert_ne!(before.key, after.key);
    let v2 = vault(store.clone(), &new).await;
    assert_eq!(
        v2.read(ids[3], "accounts").await.unwrap().identities.len(),
        1
    );
    assert_eq!(
        v2.lookup(&email("user4@example.com")).await.unwrap(),
        Some(ids[4]),
        "blind indexes unchanged"
    );
    assert_eq!(v2.read_held(ids[0]).await.unwrap()[0].value, "Invoice 9");
    let Err(err) = Vault::open(store.clone(), &old, declaration(), Arc::new(clock())).await else {
        panic!("the old master key still opens the store");
    };
    assert!(matches!(
        err,
        VaultError::Crypto(CryptoError::WrongMasterKey)
    ));
    let again = rotate_keys(&store, &old, &new, 2, |_, _| {}).await.unwrap();
    assert_eq!(again.rewrapped, 0, "a finished rotation is a no-op");
}

async fn futures_ids<S: Store>(v: &Vault<S>, n: usize) -> Vec<crate::SubjectId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            v.create(&account(
                &format!("user{i}@example.com"),
                &format!("User {i}"),
            ))
            .await
            .unwrap(),
        );
    }
    ids
}

/// One `#[tokio::test]` per conformance case, each on a fresh store from `$make`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            creates_finds_and_reads_a_subject,
            values_are_stored_sealed,
            a_second_subject_with_the_same_identity_is_refused,
            a_failed_batch_writes_nothing,
            concurrent_creates_of_one_identity_give_one_subject_and_one_conflict,
            a_purpose_sees_only_its_categories,
            undeclared_or_disallowed_data_is_refused,
            rectification_changes_values_but_never_immutable_ones,
            erasure_removes_all_but_legal_holds_and_gives_a_receipt,
            a_wrong_master_key_is_an_explicit_error,
            api_keys_are_stored_hashed_and_revoked_at_once,
            keys_rotate_without_touching_data_and_resume_after_an_interruption,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(store) = $make.await {
                    $crate::conformance::$case(store).await;
                }
            }
        )+
    };
}
