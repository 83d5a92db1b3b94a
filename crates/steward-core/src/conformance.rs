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
    let view = v.read(&cli(), id, "accounts", &[]).await.unwrap();
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
    let err = v.store().insert_subjects(&prepared).await.unwrap_err();
    assert!(
        matches!(err, crate::StoreError::Duplicate { .. }),
        "{err:?}"
    );
    assert_eq!(v.store().count_subjects().await.unwrap(), 0);
    assert_eq!(
        v.lookup(&cli(), &email("e2@example.com"), None)
            .await
            .unwrap(),
        None
    );
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
    let view = v.read(&cli(), id, "newsletter", &[]).await.unwrap();
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
        v.read(&cli(), id, "marketing", &[]).await,
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
    let view = v.read(&cli(), id, "accounts", &[]).await.unwrap();
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
        v.read(&cli(), id, "accounts", &[]).await,
        Err(VaultError::NotFound)
    ));
    assert!(v.store().load_subject(id).await.unwrap().is_none());
    let held = v.read_held(&cli(), id).await.unwrap();
    assert_eq!(
        held.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(),
        ["Invoice 2026-17: CHF 120"]
    );
    assert!(
        matches!(v.erase(&cli(), id).await, Err(VaultError::NotFound)),
        "erasing twice"
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
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    v.create(&cli(), &account("kim@example.com", "Kim"))
        .await
        .unwrap();
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
        v2.read(&cli(), ids[3], "accounts", &[])
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
    let again = rotate_keys(&store, &old, &new, 2, |_, _| {}).await.unwrap();
    assert_eq!(again.rewrapped, 0, "a finished rotation is a no-op");
}

pub async fn the_audit_chain_is_appended_in_order_and_verifies<S: Store>(store: S) {
    use crate::audit::{AuditFilter, CHECKPOINT_EVERY, Outcome};
    let master = MasterKey::generate().unwrap();
    let v = vault(store.clone(), &master).await;
    let id = v
        .create(&cli(), &account("audit@example.com", "Audited Person"))
        .await
        .unwrap();
    v.read(&cli(), id, "accounts", &[]).await.unwrap();
    assert!(v.read(&cli(), id, "no-such-purpose", &[]).await.is_err());
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
    let view = v.read(&narrow, id, "accounts", &[]).await.unwrap();
    assert!(
        view.fields
            .iter()
            .all(|f| f.category.starts_with("user.contact"))
    );
    assert_eq!(view.identities.len(), 1);
    assert_eq!(
        v.read(&narrow, id, "accounts", &["user.name".into()])
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
        v.read(&support, id, "accounts", &[])
            .await
            .unwrap_err()
            .code(),
        "ticket-required"
    );
    let support = support.with_ticket(Some("ZD-77".into()));
    v.read(&support, id, "accounts", &[]).await.unwrap();
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

async fn ledger<S: Store>(vault: Arc<Vault<S>>, mail: Arc<KeptMail>) -> crate::ledger::Ledger<S> {
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
