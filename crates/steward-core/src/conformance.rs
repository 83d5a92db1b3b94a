//! The store conformance suite: one story every backend must pass, run by each store crate
//! against a real database (SQLite always, PostgreSQL when `STEWARD_TEST_POSTGRES` is set).
//!
//! `steward_core::conformance_suite!(make_store())` expands to one `#[tokio::test]` per case;
//! `make_store()` is an expression giving a future of `Option<(store, guard)>` (`None` skips,
//! loudly); the guard, a temporary folder or a test database, lives until the case ends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use steward_crypto::{CryptoError, MasterKey};
use steward_policy::{Declaration, Source};
use time::macros::datetime;

use crate::clock::{Clock as _, ManualClock};
use crate::identity::{Identity, IdentityKind};
use crate::store::Store;
use crate::subject::FieldSource;
use crate::vault::{NewSubjectInput, Vault, VaultError};

/// Says that tests were skipped and how to run them: once per test binary and `backend`
/// (`"PostgreSQL"`, `"browser"`), written straight to the terminal — the test harness captures
/// only `eprintln!` — so a run without the database shows the skip among the `ok`s instead of
/// hiding it. `how` names the variable to set, e.g.
/// `"set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres"`.
pub fn skipped(backend: &str, how: &str) {
    use std::io::Write as _;
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if said.iter().any(|b| b == backend) {
        return;
    }
    said.push(backend.to_owned());
    let binary = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED: the {backend} tests of {binary} pass without running: {how} to run them.\n"
    );
}

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
[[purposes]]
id = "contact"
name = "Contact form"
use = "essential.service"
basis = "legitimate-interest"
legitimate_interest = "answering people who write to us"
categories = ["user.contact.email", "user.name", "user.contact.phone_number"]
subjects = ["customer"]
retention = "1 year after collection"
compatible_with = []
[[purposes]]
id = "outreach"
name = "Outreach"
use = "marketing.communications.email"
basis = "legitimate-interest"
legitimate_interest = "telling customers about our products"
categories = ["user.contact.email", "user.name", "user.contact.phone_number"]
subjects = ["customer"]
retention = "1 year after collection"
compatible_with = []
[[purposes]]
id = "support"
name = "Support"
use = "essential.service"
basis = "contract"
categories = ["user.contact.email", "user.name", "user.contact.phone_number"]
subjects = ["customer"]
retention = "1 year after collection"
compatible_with = ["accounts"]
recipients = ["crm"]
[[processors]]
id = "crm"
name = "CRM"
country = "CH"
dpa = true
contact = "https://crm.shop.example/art19"
[rights]
deadline = "1 month"
immutable = ["user.account.username"]
notify_identity_change = true
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

/// An access by the command line (admin).
pub fn cli() -> crate::Access {
    crate::Access::new(crate::Principal::cli())
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
        .create(&cli(), &account("Alice@Example.com", "Alice Martin"))
        .await
        .unwrap();
    assert_eq!(
        v.lookup(&cli(), &email("  alice@example.COM "), None)
            .await
            .unwrap(),
        Some(id),
        "normalised lookup"
    );
    assert_eq!(
        v.lookup(&cli(), &email("bob@example.com"), None)
            .await
            .unwrap(),
        None
    );
    let view = v.read(&cli(), id, "accounts", &[], false).await.unwrap();
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
        .create(&cli(), &account("carol@example.com", "Carol Secret-Name"))
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
    v.create(&cli(), &account("dan@example.com", "Dan"))
        .await
        .unwrap();
    let err = v
        .create(&cli(), &account("DAN@example.com", "Dan again"))
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
    let err = v
        .insert_prepared(&cli(), &batch[0].purpose, &prepared)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Duplicate { .. }), "{err:?}");
    assert_eq!(v.store().count_subjects().await.unwrap(), 0);
    assert_eq!(
        v.lookup(&cli(), &email("e2@example.com"), None)
            .await
            .unwrap(),
        None
    );
    // The same batch without the duplicate goes in whole.
    v.insert_prepared(&cli(), &batch[0].purpose, &prepared[..2])
        .await
        .unwrap();
    assert_eq!(v.store().count_subjects().await.unwrap(), 2);
}

pub async fn concurrent_creates_of_one_identity_give_one_subject_and_one_conflict<S: Store>(
    store: S,
) {
    let master = MasterKey::generate().unwrap();
    let v = Arc::new(vault(store, &master).await);
    let (a, b) = (Arc::clone(&v), Arc::clone(&v));
    let first = tokio::spawn(async move {
        a.create(&cli(), &account("frank@example.com", "Frank"))
            .await
    });
    let second = tokio::spawn(async move {
        b.create(&cli(), &account("frank@example.com", "Frank"))
            .await
    });
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
        .create(&cli(), &account("gina@example.com", "Gina"))
        .await
        .unwrap();
    let view = v.read(&cli(), id, "newsletter", &[], false).await.unwrap();
    assert!(
        view.identities.is_empty() && view.fields.is_empty(),
        "without consent the newsletter sees nothing collected for the account: {view:?}"
    );
    let view = v.read(&cli(), id, "newsletter", &[], true).await.unwrap();
    assert_eq!(
        view.identities.len(),
        1,
        "once Gina consents, the newsletter covers the e-mail address"
    );
    assert!(
        view.fields.is_empty(),
        "but not the name or address: {view:?}"
    );
    assert!(matches!(
        v.read(&cli(), id, "marketing", &[], false).await,
        Err(VaultError::UnknownPurpose(_))
    ));
}

pub async fn undeclared_or_disallowed_data_is_refused<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let mut input = account("hal@example.com", "Hal");
    input.fields.push(("user.financial".into(), "IBAN".into()));
    assert!(matches!(
        v.create(&cli(), &input).await,
        Err(VaultError::NotCollected { .. })
    ));
    let mut input = account("hal@example.com", "Hal");
    input.fields.push(("user.contact.emial".into(), "x".into()));
    assert!(matches!(
        v.create(&cli(), &input).await,
        Err(VaultError::UnknownCategory(_))
    ));
    let mut input = account("hal@example.com", "Hal");
    input.purpose = "nope".into();
    assert!(matches!(
        v.create(&cli(), &input).await,
        Err(VaultError::UnknownPurpose(_))
    ));
    let mut input = account("hal@example.com", "Hal");
    input.fields.push((
        "user.contact.address".into(),
        "x".repeat(crate::vault::MAX_VALUE_BYTES + 1),
    ));
    assert!(matches!(
        v.create(&cli(), &input).await,
        Err(VaultError::TooLarge { .. })
    ));
    let mut input = account("hal@example.com", "Hal");
    input.source = FieldSource::ThirdParty("data-broker".into());
    assert!(matches!(
        v.create(&cli(), &input).await,
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
    let id = v.create(&cli(), &input).await.unwrap();
    v.rectify(
        &cli(),
        id,
        "user.name",
        "Inès Dupont",
        "accounts",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let view = v.read(&cli(), id, "accounts", &[], false).await.unwrap();
    let names: Vec<&str> = view
        .fields
        .iter()
        .filter(|f| f.category == "user.name")
        .map(|f| f.value.as_str())
        .collect();
    assert_eq!(names, ["Inès Dupont"]);
    let err = v
        .rectify(
            &cli(),
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
        .create(&cli(), &account("jo@example.com", "Jo Invoice"))
        .await
        .unwrap();
    // The invoice joins the same subject, collected under the invoicing purpose.
    v.rectify(
        &cli(),
        id,
        "user.financial",
        "Invoice 2026-17: CHF 120",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let receipt = v.erase(&cli(), id).await.unwrap();
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
    assert_eq!(
        v.lookup(&cli(), &email("jo@example.com"), None)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        v.read(&cli(), id, "accounts", &[], false).await,
        Err(VaultError::NotFound)
    ));
    assert!(v.store().load_subject(id).await.unwrap().is_none());
    let held = v.read_held(&cli(), id).await.unwrap();
    assert_eq!(
        held.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(),
        ["Invoice 2026-17: CHF 120"]
    );
    let again = v.erase(&cli(), id).await.unwrap();
    assert_eq!(
        (again.removed.len(), again.retained.len()),
        (0, 1),
        "erasing twice erases nothing more and reports what the hold still keeps"
    );
    // The address can be used again by someone new.
    v.create(&cli(), &account("jo@example.com", "New Jo"))
        .await
        .unwrap();
}

pub async fn a_batch_erasure_erases_each_keeps_holds_and_audits_each<S: Store>(store: S) {
    use crate::audit::{AuditFilter, Outcome};
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = v
            .create(
                &cli(),
                &account(&format!("p{i}@example.com"), "Batch Person"),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    v.rectify(
        &cli(),
        ids[1],
        "user.financial",
        "Invoice 2026-18: CHF 80",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    v.erase(&cli(), ids[2]).await.unwrap();
    let results = v.erase_many(&cli(), &ids).await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].as_ref().unwrap().retained.is_empty());
    assert_eq!(
        results[1].as_ref().unwrap().retained[0].category,
        "user.financial"
    );
    assert!(
        matches!(results[2], Err(VaultError::NotFound)),
        "erased before: {:?}",
        results[2]
    );
    for id in &ids {
        assert!(v.store().load_subject(*id).await.unwrap().is_none());
    }
    assert_eq!(
        v.read_held(&cli(), ids[1]).await.unwrap()[0].value,
        "Invoice 2026-18: CHF 80"
    );
    assert!(v.read_held(&cli(), ids[0]).await.unwrap().is_empty());
    // One audit entry per subject, the unknown one marked failed.
    for (id, outcome) in ids.iter().zip([Outcome::Ok, Outcome::Ok, Outcome::Failed]) {
        let filter = AuditFilter {
            subject: Some(*id),
            ..AuditFilter::default()
        };
        let entries = v.store().audit_search(&filter, 0, 100).await.unwrap();
        let last = entries
            .iter()
            .rev()
            .find(|e| e.entry.action == "subject.erase")
            .unwrap();
        assert_eq!(last.entry.outcome, outcome, "{id}");
    }
    // Refused for a role that may not erase: nothing erased, each refusal audited.
    let id = v
        .create(&cli(), &account("kept@example.com", "Kept Person"))
        .await
        .unwrap();
    let service = crate::Access::new(crate::Principal {
        actor: "key:stw_service".into(),
        role: crate::Role::Service,
        scope: crate::Scope::default(),
    });
    let refused = v.erase_many(&service, &[id]).await.unwrap();
    assert!(matches!(refused[0], Err(VaultError::Denied(_))));
    assert!(v.store().load_subject(id).await.unwrap().is_some());
}

pub async fn a_wrong_master_key_is_an_explicit_error<S: Store + Clone>(store: S) {
    // The whole store under another key is the wrong master key.
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    v.create(&cli(), &account("kim@example.com", "Kim"))
        .await
        .unwrap();
    let wrong = MasterKey::generate().unwrap();
    let Err(err) = Vault::open(store.clone(), &wrong, declaration(), Arc::new(clock())).await
    else {
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

    // One key the right master key cannot open (written by a process holding another one)
    // names itself; the others read on, and a rotation stops at it.
    let kim = v
        .create(&cli(), &account("kim2@example.com", "Kim"))
        .await
        .unwrap();
    let lee = v
        .create(&cli(), &account("lee@example.com", "Lee"))
        .await
        .unwrap();
    let stranger = steward_crypto::Keyring::new(&wrong, 1)
        .wrap_subject_key(
            kim.as_bytes(),
            &steward_crypto::SubjectKey::generate().unwrap(),
        )
        .unwrap();
    store
        .rewrap_keys(crate::store::KeyTable::Subject, &[(kim, stranger)])
        .await
        .unwrap();
    let err = v
        .read(&cli(), kim, "accounts", &[], false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::KeyUnreadable { id, .. } if id == kim),
        "{err:?}"
    );
    assert!(err.to_string().contains(&kim.to_string()), "{err}");
    assert!(
        !err.to_string().contains("master key does not match"),
        "{err}"
    );
    v.read(&cli(), lee, "accounts", &[], false).await.unwrap();
    let new = MasterKey::generate().unwrap();
    let err = crate::rotation::rotate_keys(&store, &master, &new, 100, false, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::KeyUnreadable { id, .. } if id == kim),
        "{err:?}"
    );
}

pub async fn api_keys_are_stored_hashed_and_revoked_at_once<S: Store>(store: S) {
    use crate::access::{Operation, Role, Scope};
    use crate::api_key::{KeyRefused, NewApiKey};
    let now = datetime!(2026-11-22 10:00 UTC);
    let scope = Scope {
        purposes: vec!["accounts".into(), "support".into()],
        categories: vec!["user.contact".into()],
        operations: vec![Operation::Read, Operation::Lookup],
    };
    let key = NewApiKey::generate(
        Role::Support,
        scope,
        Some(now + time::Duration::days(90)),
        "helpdesk",
        now,
    )
    .unwrap();
    store.insert_api_key(&key.record).await.unwrap();
    let found = store
        .find_api_key(&key.record.prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, key.record);
    assert!(found.check(&key.secret, now).is_ok());
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
        found.check(&key.secret, now) == Err(KeyRefused::Revoked(key.record.prefix.clone())),
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
        &cli(),
        ids[0],
        "user.financial",
        "Invoice 9",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    v.erase(&cli(), ids[0]).await.unwrap();
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
    // Without the key the interrupted rotation began with, nothing is done: another key
    // would leave the key already re-wrapped unreadable.
    let other = MasterKey::generate().unwrap();
    let refused = rotate_keys(&store, &old, &other, 2, false, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(refused, VaultError::RotationInterrupted { already: 1 }),
        "{refused:?}"
    );
    let mut reports = Vec::new();
    let rotated = rotate_keys(&store, &old, &new, 2, true, |done, total| {
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
        v2.read(&cli(), ids[3], "accounts", &[], false)
            .await
            .unwrap()
            .identities
            .len(),
        1
    );
    assert_eq!(
        v2.lookup(&cli(), &email("user4@example.com"), None)
            .await
            .unwrap(),
        Some(ids[4]),
        "blind indexes unchanged"
    );
    assert_eq!(
        v2.read_held(&cli(), ids[0]).await.unwrap()[0].value,
        "Invoice 9"
    );
    // The audit key comes from the root secret, which rotation only re-wraps: the chain
    // written before the rotation still verifies after it.
    let verified = v2.verify_audit(|_, _| {}).await.unwrap().unwrap();
    assert!(verified.entries > 0);
    let Err(err) = Vault::open(store.clone(), &old, declaration(), Arc::new(clock())).await else {
        panic!("the old master key still opens the store");
    };
    assert!(matches!(
        err,
        VaultError::Crypto(CryptoError::WrongMasterKey)
    ));
    let again = rotate_keys(&store, &old, &new, 2, true, |_, _| {})
        .await
        .unwrap();
    assert_eq!(again.rewrapped, 0, "a finished rotation is a no-op");
    assert!(again.already_finished);
}

pub async fn the_audit_chain_is_appended_in_order_and_verifies<S: Store>(store: S) {
    use crate::audit::{AuditFilter, CHECKPOINT_EVERY, Outcome};
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    let id = v
        .create(&cli(), &account("audit@example.com", "Audited Person"))
        .await
        .unwrap();
    v.read(&cli(), id, "accounts", &[], false).await.unwrap();
    assert!(
        v.read(&cli(), id, "no-such-purpose", &[], false)
            .await
            .is_err()
    );
    // Many concurrent writers: group commit, one chain.
    let mut tasks = Vec::new();
    let v = Arc::new(v);
    for i in 0..(CHECKPOINT_EVERY as usize + 100) {
        let v = Arc::clone(&v);
        tasks.push(tokio::spawn(async move {
            let mut e = cli().entry("test.concurrent", v.clock().now());
            e.detail = Some(format!("{i}"));
            v.record(e).await.unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        CHECKPOINT_EVERY as usize + 100,
        "every entry has its own place"
    );
    let verified = v.verify_audit(|_, _| {}).await.unwrap().unwrap();
    assert_eq!(verified.entries, CHECKPOINT_EVERY + 103);
    assert_eq!(verified.checkpoints, 1);

    // The subject's entries, and nothing personal in them.
    let filter = AuditFilter {
        subject: Some(id),
        ..AuditFilter::default()
    };
    let mine = v.store().audit_search(&filter, 0, 100).await.unwrap();
    let actions: Vec<_> = mine.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(actions, ["subject.create", "subject.read", "subject.read"]);
    assert_eq!(mine[2].entry.outcome, Outcome::Failed);
    assert_eq!(mine[2].entry.code.as_deref(), Some("unknown-purpose"));
    assert!(
        mine[1]
            .entry
            .categories
            .contains(&"user.contact.email".to_owned())
    );
    for e in &mine {
        let text = format!("{:?}", e.entry);
        assert!(!text.contains("audit@example.com") && !text.contains("Audited Person"));
    }
    let trail = v.trail(id).await.unwrap();
    assert_eq!(trail.len(), 3);
    // Filters by purpose and time.
    let by_purpose = AuditFilter {
        purpose: Some("accounts".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        v.store()
            .audit_search(&by_purpose, 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    let later = AuditFilter {
        since: Some(v.clock().now() + time::Duration::seconds(1)),
        ..AuditFilter::default()
    };
    assert!(
        v.store()
            .audit_search(&later, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // A second vault over the same store (another process) continues the same chain.
    let other = vault(store, &master).await;
    other
        .record(cli().entry("test.other", other.clock().now()))
        .await
        .unwrap();
    v.record(cli().entry("test.first-again", v.clock().now()))
        .await
        .unwrap();
    let verified = other.verify_audit(|_, _| {}).await.unwrap().unwrap();
    assert_eq!(verified.entries, CHECKPOINT_EVERY + 105);
}

pub async fn scopes_and_roles_are_enforced_and_refusals_audited<S: Store>(store: S) {
    use crate::access::{Operation, Principal, Role, Scope};
    use crate::audit::{AuditFilter, Outcome};
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&cli(), &account("scoped@example.com", "Scoped Person"))
        .await
        .unwrap();
    let service = crate::Access::new(Principal {
        actor: "key:stw_aaaaaaaa".into(),
        role: Role::Service,
        scope: Scope::default(),
    });
    let denied = v.export(&service, id).await.unwrap_err();
    assert_eq!(denied.code(), "operation-not-allowed");
    assert_eq!(
        v.erase(&service, id).await.unwrap_err().code(),
        "operation-not-allowed"
    );
    let narrow = crate::Access::new(Principal {
        actor: "key:stw_bbbbbbbb".into(),
        role: Role::Service,
        scope: Scope {
            categories: vec!["user.contact".into()],
            operations: vec![Operation::Read],
            ..Scope::default()
        },
    });
    let view = v.read(&narrow, id, "accounts", &[], false).await.unwrap();
    assert!(
        view.fields
            .iter()
            .all(|f| f.category.starts_with("user.contact"))
    );
    assert_eq!(view.identities.len(), 1);
    assert_eq!(
        v.read(&narrow, id, "accounts", &["user.name".into()], false)
            .await
            .unwrap_err()
            .code(),
        "category-out-of-scope"
    );
    let support = crate::Access::new(Principal {
        actor: "staff:sam".into(),
        role: Role::Support,
        scope: Scope::default(),
    });
    assert_eq!(
        v.read(&support, id, "accounts", &[], false)
            .await
            .unwrap_err()
            .code(),
        "ticket-required"
    );
    let support = support.with_ticket(Some("ZD-77".into()));
    v.read(&support, id, "accounts", &[], false).await.unwrap();
    let filter = AuditFilter {
        subject: Some(id),
        ..AuditFilter::default()
    };
    let entries = v.store().audit_search(&filter, 0, 100).await.unwrap();
    let denials = entries
        .iter()
        .filter(|e| e.entry.outcome == Outcome::Denied)
        .count();
    assert_eq!(denials, 4);
    let flagged = entries.last().unwrap();
    assert!(flagged.entry.flagged);
    assert_eq!(flagged.entry.ticket.as_deref(), Some("ZD-77"));
    assert_eq!(flagged.entry.actor, "staff:sam");
}

async fn futures_ids<S: Store>(v: &Vault<S>, n: usize) -> Vec<crate::SubjectId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            v.create(
                &cli(),
                &account(&format!("user{i}@example.com"), &format!("User {i}")),
            )
            .await
            .unwrap(),
        );
    }
    ids
}

/// Keeps the mail it is given, for the cases that follow links.
#[derive(Default)]
pub struct KeptMail(pub std::sync::Mutex<Vec<crate::mail::Mail>>);

impl crate::mail::Mailer for KeptMail {
    fn send<'a>(
        &'a self,
        mail: &'a crate::mail::Mail,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::mail::MailError>> + Send + 'a>,
    > {
        self.0.lock().unwrap().push(mail.clone());
        Box::pin(async { Ok(()) })
    }
}

/// A ledger over `vault` that keeps its mail in `mail`.
pub async fn ledger<S: Store>(
    vault: Arc<Vault<S>>,
    mail: Arc<KeptMail>,
) -> crate::ledger::Ledger<S> {
    crate::ledger::Ledger::open(
        vault,
        mail,
        crate::ledger::LedgerOptions {
            public_url: "https://privacy.shop.example".into(),
            unsubscribe_mailto: None,
        },
        |_| {},
    )
    .await
    .unwrap()
}

pub async fn the_consent_ledger_chains_events_and_permits_follow_it<S: Store>(store: S) {
    use crate::consent::{Action, Evidence, Method, Party, Signal};
    use crate::ledger::Record;
    let master = MasterKey::generate().unwrap();
    let vault = Arc::new(vault(store.clone(), &master).await);
    let mail = Arc::new(KeptMail::default());
    let one = ledger(Arc::clone(&vault), Arc::clone(&mail)).await;
    let id = vault
        .create(&cli(), &account("mia@example.com", "Mia"))
        .await
        .unwrap();
    let person = Party::Subject(id);
    let grant = Record {
        party: person,
        action: Action::Grant,
        purpose: Some("newsletter".into()),
        signal: None,
        link: None,
        version: None,
        method: Method::Form,
        evidence: Evidence::default(),
    };
    let recorded = one.record(&cli(), grant).await.unwrap();
    assert_eq!(recorded.confirmation, Some("sent"));
    assert_eq!(
        one.permit(&person, "newsletter").unwrap().reason.code(),
        "not-confirmed"
    );
    let sent = mail.0.lock().unwrap().pop().unwrap();
    assert_eq!(sent.to, "mia@example.com");
    let token = sent
        .text
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    one.confirm(&token, Evidence::default()).await.unwrap();
    assert_eq!(
        one.permit(&person, "newsletter").unwrap().reason.code(),
        "consent-given"
    );

    // Many browsers signal at once: every event is chained, in one order, none lost.
    let one = Arc::new(one);
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let l = Arc::clone(&one);
        tasks.push(tokio::spawn(async move {
            let device = crate::consent::DeviceId([i; 16]);
            l.observe(device, &[Signal::Gpc, Signal::Dnt], Evidence::default())
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 2);
    }
    assert_eq!(one.seq(), 2 + 128);
    assert_eq!(one.verify(|_| {}).await.unwrap(), 130);

    // A second process on the same store starts from the ledger and catches up on refresh.
    let two = ledger(Arc::clone(&vault), Arc::new(KeptMail::default())).await;
    assert_eq!(two.seq(), 130);
    assert_eq!(
        two.permit(&person, "newsletter").unwrap().reason.code(),
        "consent-given"
    );
    let withdraw = Record {
        party: person,
        action: Action::Withdraw,
        purpose: Some("newsletter".into()),
        signal: None,
        link: None,
        version: None,
        method: Method::Api,
        evidence: Evidence::default(),
    };
    one.record(&cli(), withdraw).await.unwrap();
    assert_eq!(
        two.permit(&person, "newsletter").unwrap().reason.code(),
        "consent-given"
    );
    two.refresh().await.unwrap();
    assert_eq!(
        two.permit(&person, "newsletter").unwrap().reason.code(),
        "withdrawn"
    );
    let history = store.consent_of(&[person]).await.unwrap();
    let actions: Vec<&str> = history.iter().map(|e| e.event.action.as_str()).collect();
    assert_eq!(actions, ["grant", "confirm", "withdraw"]);
    assert_eq!(store.policy_versions().await.unwrap().len(), 1);
    assert_eq!(two.verify(|_| {}).await.unwrap(), 131);
}

/// One `#[tokio::test]` per conformance case, each on a fresh store from `$make`.
/// Requests are written with a revision guard, listed by filter, and their jobs are claimed
/// once, leased, retried later and finished.
pub async fn requests_and_jobs_are_guarded_leased_and_retried<S: Store>(store: S) {
    use crate::store::{NewJob, RequestFilter, RequestRecord};
    let at = datetime!(2026-11-22 10:00 UTC);
    let id = uuid::Uuid::now_v7();
    let mut record = RequestRecord {
        id,
        kind: "access".into(),
        status: "awaiting-verification".into(),
        subject: None,
        received_at: at,
        due_at: at + time::Duration::days(30),
        updated_at: at,
        revision: 1,
        contact: vec![1, 2, 3],
        payload: None,
        body: "{}".into(),
    };
    let job = |kind: &str, run_at| NewJob {
        kind: kind.into(),
        request: Some(id),
        run_at,
        payload: "{}".into(),
    };
    store
        .insert_request(
            &record,
            &[job("mail", at), job("erase", at + time::Duration::days(45))],
        )
        .await
        .unwrap();
    assert_eq!(store.request(id).await.unwrap().as_ref(), Some(&record));
    // A write against a stale revision changes nothing.
    record.status = "verified".into();
    record.revision = 2;
    assert!(store.update_request(&record, 1, &[]).await.unwrap());
    record.status = "denied".into();
    record.revision = 2;
    assert!(
        !store
            .update_request(&record, 1, &[job("mail", at)])
            .await
            .unwrap()
    );
    assert_eq!(store.request(id).await.unwrap().unwrap().status, "verified");
    assert_eq!(store.jobs_of(id).await.unwrap().len(), 2);
    // Filters.
    let open = RequestFilter {
        statuses: vec!["verified".into(), "executing".into()],
        kind: Some("access".into()),
        due_before: Some(at + time::Duration::days(31)),
        ..RequestFilter::default()
    };
    assert_eq!(store.list_requests(&open, 10).await.unwrap().len(), 1);
    let none = RequestFilter {
        due_before: Some(at),
        ..RequestFilter::default()
    };
    assert!(store.list_requests(&none, 10).await.unwrap().is_empty());
    // Only the due job is claimed, and only once while leased.
    let lease = at + time::Duration::minutes(5);
    let claimed = store.claim_jobs(at, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].kind.as_str(), claimed[0].attempts), ("mail", 1));
    assert!(store.claim_jobs(at, lease, 10).await.unwrap().is_empty());
    // Retried later, then done.
    store
        .retry_job(
            claimed[0].id,
            at + time::Duration::minutes(1),
            "mail-failed",
        )
        .await
        .unwrap();
    assert!(store.claim_jobs(at, lease, 10).await.unwrap().is_empty());
    let again = store
        .claim_jobs(at + time::Duration::minutes(1), lease, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("mail-failed"));
    store.finish_job(again[0].id, at).await.unwrap();
    let later = at + time::Duration::days(46);
    let due = store
        .claim_jobs(later, later + time::Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, "erase");
    let jobs = store.jobs_of(id).await.unwrap();
    assert!(jobs.iter().any(|j| j.kind == "mail" && j.done_at.is_some()));
}

/// Two processes on one store (two vaults over it) share their rate limits: the budget is the
/// store's, not each process's; keys are hashed, windows start again, and a refusal is audited
/// once per process while the rest are only counted.
pub async fn rate_limits_hold_across_processes<S: Store + Clone>(store: S) {
    use crate::rate_limit::{Hit, Verdict};
    let master = MasterKey::generate().unwrap();
    let first = vault(store.clone(), &master).await;
    let second = vault(store.clone(), &master).await;
    let t0 = time::macros::datetime!(2026-11-30 10:00:00 UTC);
    let hit = |value: &'static [u8]| Hit {
        limit: "signin-ip",
        rate: (3, time::Duration::MINUTE),
        value,
    };
    let mut allowed = 0;
    for n in 0..6 {
        let v = if n % 2 == 0 { &first } else { &second };
        if v.limits()
            .check(v.store(), &[hit(b"192.0.2.7")], t0)
            .await
            .unwrap()
            == Verdict::Allowed
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3, "3 a minute in all, not 3 per process");
    // Another address has its own budget; the first is refused without a store round trip and
    // without another audit entry.
    assert_eq!(
        first
            .limits()
            .check(first.store(), &[hit(b"192.0.2.8")], t0)
            .await
            .unwrap(),
        Verdict::Allowed
    );
    let again = first
        .limits()
        .check(first.store(), &[hit(b"192.0.2.7")], t0)
        .await
        .unwrap();
    assert!(
        matches!(again, Verdict::Refused { record: false, .. }),
        "{again:?}"
    );
    assert_eq!(first.limits().take_unrecorded(), 1);
    // Two hits at once are refused when either is over.
    let both = second
        .limits()
        .check(second.store(), &[hit(b"192.0.2.8"), hit(b"192.0.2.7")], t0)
        .await
        .unwrap();
    assert!(matches!(both, Verdict::Refused { .. }), "{both:?}");
    // The next window starts again, for both processes.
    let t1 = t0 + time::Duration::MINUTE;
    assert_eq!(
        second
            .limits()
            .check(second.store(), &[hit(b"192.0.2.7")], t1)
            .await
            .unwrap(),
        Verdict::Allowed
    );
    let later = t1 + time::Duration::SECOND;
    assert!(
        store.forget_counts(later).await.unwrap() >= 1,
        "old windows are forgotten"
    );
    // Refused at the same moment, many at once: one refusal is recorded, the rest counted.
    let shared = Arc::new(vault(store.clone(), &master).await);
    let once = |v: Arc<Vault<S>>| async move {
        v.limits()
            .check(
                v.store(),
                &[Hit {
                    limit: "burst",
                    rate: (1, time::Duration::MINUTE),
                    value: b"203.0.113.9",
                }],
                t1,
            )
            .await
            .unwrap()
    };
    assert_eq!(once(Arc::clone(&shared)).await, Verdict::Allowed);
    let burst: Vec<_> = (0..20)
        .map(|_| tokio::spawn(once(Arc::clone(&shared))))
        .collect();
    let mut recorded = 0;
    for task in burst {
        if let Verdict::Refused { record: true, .. } = task.await.unwrap() {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1, "one of 20 simultaneous refusals is recorded");
    assert_eq!(shared.limits().take_unrecorded(), 19);
}

/// An erased person stays erased everywhere: every permit is denied as `erased` but the
/// legal hold's (`legal-hold`), in the process that erased them, in another process on the
/// same store once it catches up, and in a process started afterwards.
pub async fn an_erased_person_stays_erased_in_every_process_and_after_a_restart<S: Store>(
    store: S,
) {
    use crate::consent::Party;
    let master = MasterKey::generate().unwrap();
    let mail = Arc::new(KeptMail::default());
    let first = ledger(
        Arc::new(vault(store.clone(), &master).await),
        Arc::clone(&mail),
    )
    .await;
    let second = ledger(
        Arc::new(vault(store.clone(), &master).await),
        Arc::clone(&mail),
    )
    .await;
    let id = first
        .vault()
        .create(&cli(), &account("ida@example.com", "Ida Gone"))
        .await
        .unwrap();
    let party = Party::Subject(id);
    assert_eq!(
        first.permit(&party, "accounts").unwrap().reason.code(),
        "allowed-by-basis"
    );
    first.erase_one(&cli(), id).await.unwrap();
    let reasons = |l: &crate::ledger::Ledger<S>| {
        ["accounts", "newsletter", "invoicing"].map(|p| l.permit(&party, p).unwrap().reason.code())
    };
    assert_eq!(reasons(&first), ["erased", "erased", "legal-hold"]);
    second.refresh().await.unwrap();
    assert_eq!(
        reasons(&second),
        ["erased", "erased", "legal-hold"],
        "another process"
    );
    let restarted = ledger(Arc::new(vault(store.clone(), &master).await), mail).await;
    assert_eq!(
        reasons(&restarted),
        ["erased", "erased", "legal-hold"],
        "after a restart"
    );
    // Nobody can fake or undo it through the consent API.
    let refused = first
        .record(
            &cli(),
            crate::ledger::Record {
                party,
                action: crate::consent::Action::Erase,
                purpose: None,
                signal: None,
                link: None,
                version: None,
                method: crate::consent::Method::Api,
                evidence: crate::consent::Evidence::default(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid-event");
}

/// A person as seed 000's contact form takes them in: e-mail, name and phone, for `contact`.
fn contact_form(address: &str) -> NewSubjectInput {
    NewSubjectInput {
        identities: vec![email(address)],
        fields: vec![
            ("user.name".into(), "Cleo Contact".into()),
            (
                "user.contact.phone_number".into(),
                "+41 79 555 01 01".into(),
            ),
        ],
        purpose: "contact".into(),
        source: FieldSource::Form,
    }
}

pub async fn a_read_sees_only_what_was_collected_for_its_purpose_or_a_compatible_one<S: Store>(
    store: S,
) {
    let master = MasterKey::generate().unwrap();
    let l = ledger(
        Arc::new(vault(store, &master).await),
        Arc::new(KeptMail::default()),
    )
    .await;
    let cleo = l
        .vault()
        .create(&cli(), &contact_form("cleo@example.com"))
        .await
        .unwrap();
    let seen = |v: &crate::SubjectView| {
        let mut c: Vec<String> = v
            .identities
            .iter()
            .map(|(k, _)| k.clone())
            .chain(v.fields.iter().map(|f| f.category.clone()))
            .collect();
        c.sort();
        c
    };
    let own = l.read(&cli(), cleo, "contact", &[]).await.unwrap();
    assert_eq!(
        seen(&own),
        ["email", "user.contact.phone_number", "user.name"]
    );
    // Seed 000: what the contact form collected is never used for marketing, though outreach
    // declares the same categories.
    let outreach = l.read(&cli(), cleo, "outreach", &[]).await.unwrap();
    assert!(seen(&outreach).is_empty(), "{outreach:?}");
    // Support is compatible with accounts only.
    let support = l.read(&cli(), cleo, "support", &[]).await.unwrap();
    assert!(seen(&support).is_empty(), "{support:?}");
    let ann = l
        .vault()
        .create(&cli(), &account("ann@example.com", "Ann Account"))
        .await
        .unwrap();
    let support = l.read(&cli(), ann, "support", &[]).await.unwrap();
    assert_eq!(
        seen(&support),
        ["email", "user.name"],
        "support uses what the account collected (compatible_with), within its own categories"
    );
    // A consent purpose reads nothing before the person consents.
    let refused = l.read(&cli(), ann, "newsletter", &[]).await.unwrap_err();
    assert_eq!(refused.code(), "permit-denied");
}

/// Retention on every backend: what is past its period goes in audited batches, chosen and
/// deleted inside the database; a person left with nothing is erased; nothing goes twice, and
/// nothing a day early.
pub async fn retention_sweeps_what_is_due_and_erases_who_is_left_with_nothing<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let vault = Vault::open(store, &master, declaration(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let l = Arc::new(ledger(Arc::new(vault), Arc::new(KeptMail::default())).await);
    let mut old = Vec::new();
    for n in 0..3 {
        old.push(
            l.vault()
                .create(&cli(), &contact_form(&format!("old{n}@example.com")))
                .await
                .unwrap(),
        );
    }
    // "1 year after collection": a day short of it, nothing is due.
    clock.advance(time::Duration::days(364));
    let fresh = l
        .vault()
        .create(&cli(), &contact_form("fresh@example.com"))
        .await
        .unwrap();
    let sweeper = crate::retention::Sweeper::new(Arc::clone(&l), None);
    let early = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(early.total(), 0, "{early:?}");
    clock.advance(time::Duration::days(2));
    let plan = sweeper.plan(&cli(), sweeper.now()).await.unwrap();
    // Per person: the address, the name and the phone number.
    assert_eq!(plan.total(), 9, "{plan:?}");
    let swept = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(swept.total(), 9, "{swept:?}");
    assert_eq!(swept.subjects_erased, 3);
    for id in old {
        assert!(l.vault().store().load_subject(id).await.unwrap().is_none());
    }
    assert!(
        l.vault()
            .store()
            .load_subject(fresh)
            .await
            .unwrap()
            .is_some()
    );
    let again = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.total(), 0, "{again:?}");
    assert!(l.vault().verify_audit(|_, _| {}).await.unwrap().is_ok());

    // A withdrawn consent's proof: kept 3 years ([retention] consent_proof), then its
    // personal part goes and the ledger still verifies.
    let party = crate::consent::Party::Subject(fresh);
    let record = |action| crate::ledger::Record {
        party,
        action,
        purpose: Some("newsletter".into()),
        signal: None,
        link: None,
        version: None,
        method: crate::consent::Method::Api,
        evidence: crate::consent::Evidence {
            user_agent: Some("Mozilla/5.0".into()),
            ..crate::consent::Evidence::default()
        },
    };
    l.record(&cli(), record(crate::consent::Action::Grant))
        .await
        .unwrap();
    l.record(&cli(), record(crate::consent::Action::Withdraw))
        .await
        .unwrap();
    // A person a browser is linked to: their browser's events count for them, so their proof
    // is kept whole (stripping it could change what their permit says).
    let lin = l
        .vault()
        .create(&cli(), &account("lin@example.com", "Lin Linked"))
        .await
        .unwrap();
    l.record(
        &cli(),
        crate::ledger::Record {
            party: crate::consent::Party::Device(crate::consent::DeviceId([3; 16])),
            action: crate::consent::Action::Link,
            purpose: None,
            signal: None,
            link: Some(lin),
            version: None,
            method: crate::consent::Method::Api,
            evidence: crate::consent::Evidence::default(),
        },
    )
    .await
    .unwrap();
    for action in [
        crate::consent::Action::Grant,
        crate::consent::Action::Withdraw,
    ] {
        l.record(
            &cli(),
            crate::ledger::Record {
                party: crate::consent::Party::Subject(lin),
                ..record(action)
            },
        )
        .await
        .unwrap();
    }
    let before = l.verify(|_| {}).await.unwrap();
    clock.advance(time::Duration::days(3 * 365));
    let kept = sweeper.plan(&cli(), sweeper.now()).await.unwrap();
    assert!(
        kept.lines.iter().all(|l| l.rule != "consent-proof"),
        "{kept:?}"
    );
    clock.advance(time::Duration::days(2));
    let proof = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    let redacted = proof
        .lines
        .iter()
        .find(|l| l.rule == "consent-proof")
        .map_or(0, |l| l.due);
    assert_eq!(redacted, 2, "{proof:?}");
    // Still verifies (the person's erasure, also due by now, added its event).
    assert!(l.verify(|_| {}).await.unwrap() >= before);
    let events = l.vault().store().consent_events(0, 100).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.event.party != party || e.event.purpose.is_none())
    );
    assert_eq!(events.iter().filter(|e| e.is_redacted()).count(), 2);
    assert!(
        events
            .iter()
            .any(|e| e.event.party == crate::consent::Party::Subject(lin)
                && e.event.purpose.is_some())
    );
    assert!(l.vault().verify_audit(|_, _| {}).await.unwrap().is_ok());
}

/// The audit trail's own period (`[retention] audit`): entries older than it go up to the last
/// checkpoint past it, and what remains verifies from that checkpoint, on every backend.
/// Whatever text a caller put into an audit entry (a category it named, with a quote, a
/// backslash or a line break in it) and a consent event's evidence read back as written,
/// and the chain and the ledger still verify: the stores read pages as one value (SQLite as
/// JSON), and no entry may make a page unreadable.
pub async fn text_a_caller_chose_reads_back_and_verifies<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let vault = vault(store.clone(), &master).await;
    let odd = [
        "user.\"quoted\"",
        "back\\slash",
        "line\nbreak\ttab",
        "ünïcödé ✓ \u{1}",
    ];
    let mut entry = cli().entry("subject.read", vault.clock().now());
    entry.categories = odd.iter().map(|c| (*c).to_owned()).collect();
    entry.detail = Some("\"}],[\"".to_owned());
    let seq = vault.record(entry.clone()).await.unwrap();
    let read = vault.store().audit_entries(seq - 1, seq, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].entry, entry);
    assert!(vault.verify_audit(|_, _| {}).await.unwrap().is_ok());

    let l = ledger(Arc::new(vault), Arc::new(KeptMail::default())).await;
    let id = l
        .vault()
        .create(&cli(), &account("odd@example.com", "Odd Text"))
        .await
        .unwrap();
    let agent = "Mozilla/5.0 (\"quoted\"; back\\slash)\n";
    let grant = crate::ledger::Record {
        party: crate::consent::Party::Subject(id),
        action: crate::consent::Action::Grant,
        purpose: Some("newsletter".into()),
        signal: None,
        link: None,
        version: None,
        method: crate::consent::Method::Form,
        evidence: crate::consent::Evidence {
            user_agent: Some(agent.to_owned()),
            ..crate::consent::Evidence::default()
        },
    };
    l.record(&cli(), grant).await.unwrap();
    let events = l.vault().store().consent_events(0, 100).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.evidence.user_agent.as_deref() == Some(agent))
    );
    assert!(l.verify(|_| {}).await.unwrap() > 0);
}

pub async fn the_audit_trail_is_trimmed_at_a_checkpoint_and_still_verifies<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let text = format!("{DECLARATION}\n[retention]\naudit = \"30 days\"\n");
    let declaration = Arc::new(
        steward_policy::check(&Source::new("conformance.toml", text))
            .unwrap()
            .declaration
            .unwrap(),
    );
    let vault = Vault::open(store, &master, declaration, Arc::new(clock.clone()))
        .await
        .unwrap();
    let l = Arc::new(ledger(Arc::new(vault), Arc::new(KeptMail::default())).await);
    let write = |n: usize| {
        let l = Arc::clone(&l);
        async move {
            let entries = (0..n)
                .map(|_| cli().entry("subject.read", l.vault().clock().now()))
                .collect();
            l.vault()
                .store()
                .append_audit(entries, l.vault().audit_chain())
                .await
                .unwrap();
        }
    };
    write(2500).await;
    clock.advance(time::Duration::days(31));
    write(100).await;
    let before = l.vault().verify_audit(|_, _| {}).await.unwrap().unwrap();
    let sweeper = crate::retention::Sweeper::new(Arc::clone(&l), None);
    let due = |s: &crate::retention::Sweep| {
        s.lines
            .iter()
            .find(|l| l.rule == "audit")
            .map_or(0, |l| l.due)
    };
    let plan = sweeper.plan(&cli(), sweeper.now()).await.unwrap();
    // Up to the last checkpoint written 31 days ago: 2 × 1024 entries.
    assert_eq!(due(&plan), 2 * crate::audit::CHECKPOINT_EVERY, "{plan:?}");
    let swept = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(due(&swept), 2 * crate::audit::CHECKPOINT_EVERY, "{swept:?}");
    let after = l.vault().verify_audit(|_, _| {}).await.unwrap().unwrap();
    assert!(after.entries < before.entries, "{after:?} {before:?}");
    assert!(
        l.vault()
            .store()
            .audit_entries(0, 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing more is due until another checkpoint passes the period.
    let again = sweeper
        .run(&cli(), sweeper.now(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(due(&again), 0, "{again:?}");
    l.vault().verify_audit(|_, _| {}).await.unwrap().unwrap();
}

pub async fn held_data_serves_its_hold_purpose_after_an_erasure_until_the_hold_ends<S: Store>(
    store: S,
) {
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let make = |store: S| {
        let clock = clock.clone();
        let master = &master;
        async move {
            let v = Vault::open(store, master, declaration(), Arc::new(clock))
                .await
                .unwrap();
            ledger(Arc::new(v), Arc::new(KeptMail::default())).await
        }
    };
    let l = make(store.clone()).await;
    let id = l
        .vault()
        .create(&cli(), &account("ivy@example.com", "Ivy Invoice"))
        .await
        .unwrap();
    l.vault()
        .rectify(
            &cli(),
            id,
            "user.financial",
            "Invoice 2026-31: CHF 480",
            "invoicing",
            &FieldSource::Api,
        )
        .await
        .unwrap();
    let receipt = l.erase_one(&cli(), id).await.unwrap();
    assert_eq!(receipt.retained.len(), 1);

    // Another process, after the erasure: the invoice serves accounting, and nothing else.
    let other = make(store.clone()).await;
    let kept = other.read(&cli(), id, "invoicing", &[]).await.unwrap();
    assert_eq!(
        kept.fields
            .iter()
            .map(|f| f.value.as_str())
            .collect::<Vec<_>>(),
        ["Invoice 2026-31: CHF 480"]
    );
    assert!(matches!(
        other.read(&cli(), id, "accounts", &[]).await,
        Err(crate::ledger::ConsentError::Vault(VaultError::NotFound))
    ));
    assert_eq!(
        other
            .vault()
            .lookup(&cli(), &email("ivy@example.com"), Some("invoicing"))
            .await
            .unwrap(),
        Some(id),
        "found by the kept blind index, for the hold's purpose"
    );
    assert_eq!(
        other
            .vault()
            .lookup(&cli(), &email("ivy@example.com"), Some("accounts"))
            .await
            .unwrap(),
        None
    );
    let export = other.vault().export(&cli(), id).await.unwrap();
    assert_eq!(export.held.len(), 1, "a later access package holds it");

    // Ten years and a day on, the hold ends: the data, its key and its index go.
    clock.advance(time::Duration::days(3655));
    let ended = other.vault().end_holds(100).await.unwrap();
    assert_eq!(
        (ended.fields, ended.subjects.as_slice()),
        (1, [id].as_slice())
    );
    assert!(matches!(
        other.read(&cli(), id, "invoicing", &[]).await,
        Err(crate::ledger::ConsentError::Vault(VaultError::NotFound))
    ));
    assert_eq!(
        other
            .vault()
            .lookup(&cli(), &email("ivy@example.com"), Some("invoicing"))
            .await
            .unwrap(),
        None
    );
    let trail = other
        .vault()
        .store()
        .audit_search(
            &crate::audit::AuditFilter {
                subject: Some(id),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert!(trail.iter().any(|e| e.entry.action == "hold.end"));
    assert_eq!(
        other.vault().end_holds(100).await.unwrap().fields,
        0,
        "ending holds twice ends nothing more"
    );
}

pub async fn a_corrected_identity_is_the_identity_in_every_process<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let mail = Arc::new(KeptMail::default());
    let l = ledger(
        Arc::new(vault(store.clone(), &master).await),
        Arc::clone(&mail),
    )
    .await;
    let id = l
        .vault()
        .create(&cli(), &account("old@example.com", "Olga Old"))
        .await
        .unwrap();
    let taken = l
        .vault()
        .create(&cli(), &account("taken@example.com", "Tom Taken"))
        .await
        .unwrap();
    l.rectify(
        &cli(),
        id,
        "user.contact.email",
        "New@Example.com",
        "accounts",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let other = vault(store.clone(), &master).await;
    assert_eq!(
        other
            .lookup(&cli(), &email("new@example.com"), None)
            .await
            .unwrap(),
        Some(id),
        "the new address finds the person"
    );
    assert_eq!(
        other
            .lookup(&cli(), &email("old@example.com"), None)
            .await
            .unwrap(),
        None,
        "the old one no longer does"
    );
    let view = l.read(&cli(), id, "accounts", &[]).await.unwrap();
    assert_eq!(
        view.identities,
        [("email".to_owned(), "new@example.com".to_owned())]
    );
    // Told at both addresses (the declaration says so), and never in the audit.
    let sent: Vec<String> = mail
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.kind == "identity.changed")
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(sent, ["old@example.com", "new@example.com"]);
    // Another person's address is refused, and nothing changes.
    let refused = l
        .rectify(
            &cli(),
            id,
            "user.contact.email",
            "taken@example.com",
            "accounts",
            &FieldSource::Api,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "duplicate-identity");
    assert_eq!(
        other
            .lookup(&cli(), &email("taken@example.com"), None)
            .await
            .unwrap(),
        Some(taken)
    );
    assert_eq!(
        other
            .lookup(&cli(), &email("new@example.com"), None)
            .await
            .unwrap(),
        Some(id)
    );
    let trail = other
        .store()
        .audit_search(
            &crate::audit::AuditFilter {
                subject: Some(id),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    let text = format!("{trail:?}");
    assert!(
        trail.iter().any(|e| e.entry.action == "subject.rectify"
            && e.entry
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("identity changed"))),
        "{text}"
    );
    assert!(
        !text.contains("old@") && !text.contains("new@") && !text.contains("taken@"),
        "no address in the audit"
    );
}

/// An API key of `role`, narrowed to `purposes` (none: any).
fn key(role: crate::Role, purposes: &[&str]) -> crate::Access {
    crate::Access::new(crate::Principal {
        actor: format!("key:stw_{}", role.as_str()),
        role,
        scope: crate::Scope {
            purposes: purposes.iter().map(|p| (*p).to_owned()).collect(),
            ..crate::Scope::default()
        },
    })
}

pub async fn concurrent_corrections_of_one_address_leave_exactly_one<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let a = Arc::new(vault(store.clone(), &master).await);
    let b = Arc::new(vault(store.clone(), &master).await);
    let id = a
        .create(&cli(), &account("race@example.com", "Rae Race"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let v = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            v.rectify(
                &cli(),
                id,
                "user.contact.email",
                &format!("race{i}@example.com"),
                "accounts",
                &FieldSource::Api,
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stored = a.store().load_subject(id).await.unwrap().unwrap();
    let emails = stored
        .identities
        .iter()
        .filter(|i| i.kind == "email")
        .count();
    assert_eq!(emails, 1, "one address, whoever won");
    let mut finding = 0;
    for i in 0..8 {
        if a.lookup(&cli(), &email(&format!("race{i}@example.com")), None)
            .await
            .unwrap()
            == Some(id)
        {
            finding += 1;
        }
    }
    assert_eq!(finding, 1, "only the address that won finds the person");
    assert_eq!(
        a.lookup(&cli(), &email("race@example.com"), None)
            .await
            .unwrap(),
        None
    );
}

pub async fn a_purpose_corrects_and_finds_only_what_was_collected_for_it<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let v = vault(store, &master).await;
    let id = v
        .create(&cli(), &account("own@example.com", "Olive Own"))
        .await
        .unwrap();
    let cleo = v
        .create(&cli(), &contact_form("cleo2@example.com"))
        .await
        .unwrap();
    // A key for the newsletter may not take over the account's address.
    let newsletter = key(crate::Role::Service, &["newsletter"]);
    let refused = v
        .rectify(
            &newsletter,
            id,
            "user.contact.email",
            "attacker@example.com",
            "newsletter",
            &FieldSource::Api,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "collected-for-another-purpose");
    assert_eq!(
        v.lookup(&cli(), &email("own@example.com"), None)
            .await
            .unwrap(),
        Some(id)
    );
    // Support (compatible with accounts) finds the account holder, not the contact form's.
    let support = key(crate::Role::Service, &["support"]);
    assert_eq!(
        v.lookup(&support, &email("own@example.com"), Some("support"))
            .await
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        v.lookup(&support, &email("cleo2@example.com"), Some("support"))
            .await
            .unwrap(),
        None,
        "what the contact form collected does not find the person for support"
    );
    assert_eq!(
        v.lookup(&support, &email("cleo2@example.com"), None)
            .await
            .unwrap(),
        None,
        "nor without a purpose, for a key narrowed to support"
    );
    assert_eq!(
        v.lookup(&cli(), &email("cleo2@example.com"), Some("contact"))
            .await
            .unwrap(),
        Some(cleo)
    );
    // A phone number for someone who has none becomes an identity: normalised, unique, found.
    v.rectify(
        &cli(),
        id,
        "user.contact.phone_number",
        "+41 79 555 12 34",
        "accounts",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let phone = Identity::parse(IdentityKind::Phone, "+41795551234").unwrap();
    assert_eq!(v.lookup(&cli(), &phone, None).await.unwrap(), Some(id));
    let taken = v
        .rectify(
            &cli(),
            cleo,
            "user.contact.phone_number",
            "+41 79 555 12 34",
            "contact",
            &FieldSource::Api,
        )
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "duplicate-identity");
}

pub async fn an_erasure_never_loses_what_was_written_while_it_read<S: Store>(store: S) {
    use crate::store::{Erased, Erasure};
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    let id = v
        .create(&cli(), &account("late@example.com", "Lee Late"))
        .await
        .unwrap();
    let read = store.load_subject(id).await.unwrap().unwrap();
    // An invoice arrives between the erasure's read and its write.
    v.rectify(
        &cli(),
        id,
        "user.financial",
        "Invoice 2026-40: CHF 10",
        "invoicing",
        &FieldSource::Api,
    )
    .await
    .unwrap();
    let stale = Erasure {
        subject: id,
        fields: read.fields.iter().map(|f| f.id).collect(),
        hold: None,
    };
    let audited_before = store.audit_last_seq().await.unwrap();
    let audit = crate::store::Audited {
        entries: vec![
            crate::Access::new(crate::access::Principal::cli())
                .entry("subject.erase", datetime!(2026-01-01 0:00 UTC)),
        ],
        chain: v.audit_chain(),
    };
    assert_eq!(
        store.erase_subjects(&[stale], audit).await.unwrap(),
        [Erased::Changed],
        "the store refuses to erase what it was not shown"
    );
    assert!(store.load_subject(id).await.unwrap().is_some(), "untouched");
    assert_eq!(
        store.audit_last_seq().await.unwrap(),
        audited_before,
        "no erasure entry for an erasure not done"
    );
    // The vault reads again and keeps the invoice.
    let l = ledger(Arc::new(v), Arc::new(KeptMail::default())).await;
    let receipt = l.erase_one(&cli(), id).await.unwrap();
    assert_eq!(receipt.retained.len(), 1, "{receipt:?}");
    let kept = l.read(&cli(), id, "invoicing", &[]).await.unwrap();
    assert_eq!(kept.fields[0].value, "Invoice 2026-40: CHF 10");
}

pub async fn a_read_tells_a_caller_who_may_not_read_nothing_of_the_permit<S: Store>(store: S) {
    let master = MasterKey::generate().unwrap();
    let l = ledger(
        Arc::new(vault(store, &master).await),
        Arc::new(KeptMail::default()),
    )
    .await;
    let id = l
        .vault()
        .create(&cli(), &account("quiet@example.com", "Quinn Quiet"))
        .await
        .unwrap();
    let auditor = key(crate::Role::Auditor, &[]);
    let refused = l.read(&auditor, id, "newsletter", &[]).await.unwrap_err();
    assert_eq!(refused.code(), "operation-not-allowed");
    let narrow = key(crate::Role::Service, &["accounts"]);
    let refused = l.read(&narrow, id, "newsletter", &[]).await.unwrap_err();
    assert_ne!(refused.code(), "permit-denied", "{refused:?}");
    // An id nobody has and an erased one answer alike, even for a consent purpose.
    let erased = l
        .vault()
        .create(&cli(), &account("gone2@example.com", "Gil Gone"))
        .await
        .unwrap();
    l.erase_one(&cli(), erased).await.unwrap();
    for who in [erased, crate::SubjectId(uuid::Uuid::now_v7())] {
        let answer = l.read(&cli(), who, "newsletter", &[]).await.unwrap_err();
        assert_eq!(answer.code(), "not-found", "{who}");
    }
    assert_eq!(
        l.read(&cli(), id, "newsletter", &[])
            .await
            .unwrap_err()
            .code(),
        "permit-denied",
        "a known person without consent: the permit says why"
    );
    // Consent comes from the person: the API cannot confirm a double opt-in, and lifting a
    // restriction is for staff who decide.
    let confirm = |action| crate::ledger::Record {
        party: crate::consent::Party::Subject(id),
        action,
        purpose: Some("newsletter".to_owned()),
        signal: None,
        link: None,
        version: None,
        method: crate::consent::Method::Api,
        evidence: crate::consent::Evidence::default(),
    };
    let refused = l
        .record(&cli(), confirm(crate::consent::Action::Confirm))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid-event");
    let service = key(crate::Role::Service, &[]);
    let mut lift = confirm(crate::consent::Action::Lift);
    lift.purpose = None;
    let refused = l.record(&service, lift.clone()).await.unwrap_err();
    assert_eq!(refused.code(), "operation-not-allowed");
    l.record(&key(crate::Role::Dpo, &[]), lift).await.unwrap();
}

/// Opens the breach register over `store` with a shared clock and a mailbox.
async fn register<S: Store>(
    store: S,
    clock: &ManualClock,
    mail: Arc<KeptMail>,
) -> crate::incidents::Incidents<S> {
    let master = MasterKey::generate().unwrap();
    let v = Vault::open(store, &master, declaration(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let l = ledger(Arc::new(v), mail).await;
    crate::incidents::Incidents::new(Arc::new(crate::requests::Requests::new(
        Arc::new(l),
        Arc::new(NoWebhooks),
    )))
}

pub async fn an_incident_finds_exactly_the_people_it_concerns_and_tells_each_once<S: Store>(
    store: S,
) {
    use crate::incidents::{Derive, IncidentError, NewAssessment, NewIncident, Risk};
    let clock = clock();
    let mail = Arc::new(KeptMail::default());
    let reg = register(store, &clock, Arc::clone(&mail)).await;
    let vault = Arc::clone(reg_vault(&reg));
    let mut with_email = Vec::new();
    for n in 0..4 {
        with_email.push(
            vault
                .create(&cli(), &account(&format!("p{n}@example.com"), "Pat"))
                .await
                .unwrap(),
        );
    }
    // People without an e-mail address: a username and a name only.
    for n in 0..2 {
        let input = NewSubjectInput {
            identities: vec![Identity::parse(IdentityKind::Username, &format!("user{n}")).unwrap()],
            fields: vec![("user.name".into(), "Sam".into())],
            purpose: "accounts".into(),
            source: FieldSource::Form,
        };
        vault.create(&cli(), &input).await.unwrap();
    }
    // A key reads two people inside the window and one before it.
    let leaked = crate::Access::new(crate::Principal {
        actor: "key:stw_5e41ce01".into(),
        ..key(crate::Role::Service, &[]).principal
    });
    vault
        .read(&leaked, with_email[0], "accounts", &[], false)
        .await
        .unwrap();
    clock.advance(time::Duration::hours(2));
    let window_from = clock.now();
    for id in &with_email[1..3] {
        vault
            .read(&leaked, *id, "accounts", &[], false)
            .await
            .unwrap();
    }
    let other = crate::Access::new(crate::Principal {
        actor: "key:stw_other".into(),
        ..key(crate::Role::Service, &[]).principal
    });
    vault
        .read(&other, with_email[3], "accounts", &[], false)
        .await
        .unwrap();
    clock.advance(time::Duration::hours(1));
    let open = |title: &str| NewIncident {
        title: title.into(),
        categories: vec!["user.contact.email".into()],
        occurred_from: Some(window_from),
        detected_at: Some(clock.now()),
        ..NewIncident::default()
    };
    // Awareness before detection is refused.
    let bad = reg
        .open(
            &cli(),
            NewIncident {
                aware_at: Some(clock.now() - time::Duration::hours(1)),
                ..open("x")
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad, IncidentError::Invalid(ref m) if m.contains("before detection")),
        "{bad}"
    );
    let unknown = reg
        .open(
            &cli(),
            NewIncident {
                categories: vec!["user.contact.emial".into()],
                ..open("x")
            },
        )
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("did you mean"), "{unknown}");

    let by_category = reg.open(&cli(), open("inbox exposed")).await.unwrap();
    let n = by_category.incident.number.to_string();
    let v = reg
        .derive(
            &cli(),
            &n,
            Derive {
                categories: true,
                ..Derive::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        v.affected.total, 4,
        "exactly the people holding an e-mail address"
    );
    // Deriving again finds nobody new.
    let v = reg
        .derive(
            &cli(),
            &n,
            Derive {
                categories: true,
                ..Derive::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(v.affected.total, 4);

    let by_key = reg.open(&cli(), open("key leaked")).await.unwrap();
    let k = by_key.incident.number.to_string();
    let v = reg
        .derive(
            &cli(),
            &k,
            Derive {
                actor: Some("key:stw_5e41ce01".into()),
                ..Derive::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        v.affected.by_source,
        vec![("audit".to_owned(), 2)],
        "exactly the people the key read inside the window"
    );

    // People are told only after an assessment, then each once.
    let early = reg
        .notify_subjects(&cli(), &n, false, None)
        .await
        .unwrap_err();
    assert!(matches!(early, IncidentError::Conflict(_)), "{early}");
    reg.assess(
        &cli(),
        &n,
        NewAssessment {
            risk: Risk::High,
            reason: "readable by anyone with the link".into(),
            consequences: "phishing".into(),
            measures: "link revoked".into(),
            exemptions: vec![],
            sealed_only: false,
        },
    )
    .await
    .unwrap();
    reg.notify_subjects(&cli(), &n, false, None).await.unwrap();
    let first = reg.deliver(2, &mut |_| {}).await.unwrap();
    assert_eq!(first.sent, 2, "a run sends at most its limit");
    let rest = reg.deliver(100, &mut |_| {}).await.unwrap();
    assert_eq!(rest.sent, 2);
    assert_eq!(reg.deliver(100, &mut |_| {}).await.unwrap().sent, 0);
    let mut to: Vec<String> = mail
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.kind == "breach")
        .map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(
        to,
        (0..4)
            .map(|n| format!("p{n}@example.com"))
            .collect::<Vec<_>>(),
        "each affected person once"
    );
    let again = reg
        .notify_subjects(&cli(), &n, false, None)
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("nobody is notified twice"),
        "{again}"
    );
    // Not the DPO's or admin's: refused.
    let refused = reg
        .open(&key(crate::Role::Support, &[]), open("y"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "operation-not-allowed");
}

fn reg_vault<S: Store>(reg: &crate::incidents::Incidents<S>) -> &Arc<Vault<S>> {
    reg.requests().ledger().vault()
}

pub async fn a_disclosure_needs_every_consent_and_a_gag_hides_it_until_its_date<S: Store>(
    store: S,
) {
    use crate::disclosures::{DisclosureError, Disclosures, NewDisclosure, Tell, told};
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let v = Vault::open(store, &master, declaration(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let mail = Arc::new(KeptMail::default());
    let l = Arc::new(ledger(Arc::new(v), Arc::clone(&mail)).await);
    let log = Disclosures::new(Arc::clone(&l));
    let a = l
        .vault()
        .create(&cli(), &account("a@example.com", "Ann"))
        .await
        .unwrap();
    let b = l
        .vault()
        .create(&cli(), &account("b@example.com", "Ben"))
        .await
        .unwrap();
    let consent = |who, action| crate::ledger::Record {
        party: crate::consent::Party::Subject(who),
        action,
        purpose: Some("newsletter".into()),
        signal: None,
        link: None,
        version: None,
        method: crate::consent::Method::Api,
        evidence: crate::consent::Evidence::default(),
    };
    l.record(&cli(), consent(a, crate::consent::Action::Grant))
        .await
        .unwrap();
    let sent = mail.0.lock().unwrap().pop().unwrap();
    let token = sent
        .text
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    l.confirm(&token, crate::consent::Evidence::default())
        .await
        .unwrap();
    assert!(
        l.permit(&crate::consent::Party::Subject(a), "newsletter")
            .unwrap()
            .allowed
    );
    let share = |subjects: Vec<crate::SubjectId>, counterparts| NewDisclosure {
        recipient: "crm".into(),
        subjects,
        counterparts,
        categories: vec!["user.contact.email".into()],
        purpose: Some("newsletter".into()),
        ..NewDisclosure::default()
    };
    // Both parties must have opted in: B has not.
    let refused = log
        .record(&cli(), share(vec![a], vec![b]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            DisclosureError::ConsentMissing {
                missing: 1,
                total: 2,
                ..
            }
        ),
        "{refused}"
    );
    let audit = l
        .vault()
        .audit_entries(&cli(), &crate::audit::AuditFilter::default(), 0, 1000)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.entry.action == "disclosure.refuse"
            && e.entry.code.as_deref() == Some("consent-missing")),
        "the refusal is audited"
    );
    assert!(
        told(l.vault().store(), a, clock.now())
            .await
            .unwrap()
            .is_empty(),
        "nothing shared"
    );
    log.record(&cli(), share(vec![a], vec![])).await.unwrap();
    // A court order, gagged for 30 days.
    let gagged = NewDisclosure {
        recipient: "crm".into(),
        subjects: vec![a],
        categories: vec!["user.name".into()],
        basis: Some(steward_policy::declaration::LawfulBasis::LegalObligation),
        reference: Some("Order 2026/117".into()),
        tell: Some(Tell::After(clock.now() + time::Duration::days(30))),
        ..NewDisclosure::default()
    };
    let past = log
        .record(
            &cli(),
            NewDisclosure {
                tell: Some(Tell::After(clock.now() - time::Duration::days(1))),
                ..gagged.clone()
            },
        )
        .await
        .unwrap_err();
    assert!(past.to_string().contains("gag"), "{past}");
    log.record(&cli(), gagged).await.unwrap();
    let seen = told(l.vault().store(), a, clock.now()).await.unwrap();
    assert_eq!(seen.len(), 1, "the gagged one is held back");
    assert_eq!(seen[0].purpose.as_deref(), Some("newsletter"));
    clock.advance(time::Duration::days(30));
    let seen = told(l.vault().store(), a, clock.now()).await.unwrap();
    assert_eq!(seen.len(), 2, "shown once the gag ends");
    assert_eq!(seen[1].reference.as_deref(), Some("Order 2026/117"));
    assert!(
        told(l.vault().store(), b, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    // An unknown recipient or category names the fix.
    let unknown = log
        .record(
            &cli(),
            NewDisclosure {
                recipient: "nsa".into(),
                ..share(vec![a], vec![])
            },
        )
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("[[processors]]"), "{unknown}");
}

pub async fn an_aggregate_never_shows_a_group_under_k<S: Store>(store: S) {
    use crate::disclosures::{AggregateQuery, Dimension, Disclosures};
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let v = Vault::open(store, &master, declaration(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let l = Arc::new(ledger(Arc::new(v), Arc::new(KeptMail::default())).await);
    // 1,000 people over three months; a few in a purpose of their own.
    for n in 0..1000 {
        if n % 400 == 0 {
            clock.advance(time::Duration::days(31));
        }
        let mut input = account(&format!("agg{n}@example.com"), "Al");
        if n % 250 == 7 {
            input.purpose = "contact".into();
            input.fields.retain(|(c, _)| c == "user.name");
        }
        l.vault().create(&cli(), &input).await.unwrap();
    }
    let log = Disclosures::new(Arc::clone(&l));
    let a = log
        .aggregate(
            &cli(),
            &AggregateQuery {
                by: vec![Dimension::Purpose, Dimension::Month],
                ..AggregateQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.k, 10);
    assert!(a.groups.iter().all(|g| g.count >= 10), "{:?}", a.groups);
    // The contact-form groups (4 people) are held back, and with them the smallest other
    // group, so that the people held back are at least k together.
    assert_eq!(a.groups.len(), 2, "{a:?}");
    assert!(a.suppressed >= 3, "{a:?}");
    assert!(
        a.groups
            .iter()
            .any(|g| g.values.get("purpose").map(String::as_str) == Some("accounts")),
        "{a:?}"
    );
    let json = serde_json::to_string(&a).unwrap();
    assert!(
        !json.contains("@example.com") && !json.contains("Al\""),
        "no value: {json}"
    );
}

/// Drops every webhook: the secret cases send none.
struct NoWebhooks;

impl crate::requests::Notifier for NoWebhooks {
    fn post<'a>(
        &'a self,
        _url: &'a str,
        _body: &'a str,
        _signature: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u16, String>> + Send + 'a>> {
        Box::pin(async { Err("no webhooks here".to_owned()) })
    }
}

pub async fn a_recipient_secret_is_shown_once_and_rotates_across_processes<S: Store>(store: S) {
    use crate::requests::{RequestError, Requests};
    let master = MasterKey::generate().unwrap();
    let clock = clock();
    let make = |store: S| {
        let clock = clock.clone();
        let master = &master;
        async move {
            let v = Vault::open(store, master, declaration(), Arc::new(clock))
                .await
                .unwrap();
            let l = ledger(Arc::new(v), Arc::new(KeptMail::default())).await;
            Requests::new(Arc::new(l), Arc::new(NoWebhooks))
        }
    };
    let (a, b) = (make(store.clone()).await, make(store.clone()).await);
    let first = a.recipient_secret(&cli(), "crm", false).await.unwrap();
    assert_eq!((first.generation, first.secret.len()), (1, 64));
    assert!(
        matches!(
            b.recipient_secret(&cli(), "crm", false).await,
            Err(RequestError::SecretShown { .. })
        ),
        "shown once, in any process"
    );
    assert!(matches!(
        a.recipient_secret(&cli(), "nobody", false).await,
        Err(RequestError::UnknownRecipient(_))
    ));
    let support = crate::Access::new(crate::Principal {
        actor: "key:stw_support".into(),
        role: crate::Role::Support,
        scope: crate::Scope::default(),
    });
    assert!(
        matches!(
            a.recipient_secret(&support, "crm", true).await,
            Err(RequestError::Denied(_))
        ),
        "only those who manage keys"
    );
    let at = crate::clock::Clock::now(&clock);
    let one = a.sign_webhook("crm", "{}", at).await.unwrap();
    assert_eq!(one.matches("v1=").count(), 1);
    let rotated = b.recipient_secret(&cli(), "crm", true).await.unwrap();
    assert_eq!(rotated.generation, 2);
    assert_ne!(rotated.secret, first.secret);
    let both = a.sign_webhook("crm", "{}", at).await.unwrap();
    assert_eq!(both.matches("v1=").count(), 2, "{both}");
    assert!(
        both.ends_with(one.split("v1=").nth(1).unwrap()),
        "the old signature rides along for a day: {both} {one}"
    );
    let later = a
        .sign_webhook("crm", "{}", at + time::Duration::hours(25))
        .await
        .unwrap();
    assert_eq!(later.matches("v1=").count(), 1, "{later}");
    // Two rotations close together: the secret in use before the first still signs, since the
    // recipient may never have received the one in between.
    let third = a.recipient_secret(&cli(), "crm", true).await.unwrap();
    assert_eq!(third.generation, 3);
    let both = a.sign_webhook("crm", "{}", at).await.unwrap();
    assert!(
        both.ends_with(one.split("v1=").nth(1).unwrap()),
        "generation 1 still signs beside 3: {both}"
    );
    assert!(matches!(
        a.recipient_secret(&cli(), "nobody-told", false).await,
        Err(RequestError::UnknownRecipient(_))
    ));
    let trail = a
        .ledger()
        .vault()
        .store()
        .audit_search(&crate::audit::AuditFilter::default(), 0, 1000)
        .await
        .unwrap();
    let text = format!("{trail:?}");
    assert!(
        trail
            .iter()
            .any(|e| e.entry.action == "recipient.secret.rotate")
    );
    assert!(
        !text.contains(&first.secret) && !text.contains(&rotated.secret),
        "no secret in the audit"
    );
}

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
            a_batch_erasure_erases_each_keeps_holds_and_audits_each,
            a_wrong_master_key_is_an_explicit_error,
            api_keys_are_stored_hashed_and_revoked_at_once,
            keys_rotate_without_touching_data_and_resume_after_an_interruption,
            the_audit_chain_is_appended_in_order_and_verifies,
            scopes_and_roles_are_enforced_and_refusals_audited,
            the_consent_ledger_chains_events_and_permits_follow_it,
            requests_and_jobs_are_guarded_leased_and_retried,
            rate_limits_hold_across_processes,
            an_erased_person_stays_erased_in_every_process_and_after_a_restart,
            a_read_sees_only_what_was_collected_for_its_purpose_or_a_compatible_one,
            held_data_serves_its_hold_purpose_after_an_erasure_until_the_hold_ends,
            a_corrected_identity_is_the_identity_in_every_process,
            a_recipient_secret_is_shown_once_and_rotates_across_processes,
            an_incident_finds_exactly_the_people_it_concerns_and_tells_each_once,
            a_disclosure_needs_every_consent_and_a_gag_hides_it_until_its_date,
            an_aggregate_never_shows_a_group_under_k,
            concurrent_corrections_of_one_address_leave_exactly_one,
            a_purpose_corrects_and_finds_only_what_was_collected_for_it,
            an_erasure_never_loses_what_was_written_while_it_read,
            a_read_tells_a_caller_who_may_not_read_nothing_of_the_permit,
            retention_sweeps_what_is_due_and_erases_who_is_left_with_nothing,
            the_audit_trail_is_trimmed_at_a_checkpoint_and_still_verifies,
            text_a_caller_chose_reads_back_and_verifies,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                // The guard (a temporary folder, a test database) lives until the case ends.
                if let Some((store, _guard)) = $make.await {
                    $crate::conformance::$case(store).await;
                }
            }
        )+
    };
}
