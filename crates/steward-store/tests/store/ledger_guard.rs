//! The ledgers' guards, in the database and in verification: no consent event is ever changed
//! but for the removal of its personal part, and only the retention sweep's removal (sealed
//! with the ledger key) verifies; the audit trail is never trimmed past a change, and nothing
//! put back below its trim point goes unnoticed.

use std::sync::Arc;

use sqlx::Connection as _;
use steward_core::conformance::{cli, declaration, ledger};
use steward_core::consent::{Action, Evidence, Method, Party};
use steward_core::ledger::Record;
use steward_core::store::prelude::*;
use steward_core::{Clock as _, SystemClock, Vault};
use steward_crypto::MasterKey;

/// Ana's grant and withdrawal of the newsletter, on a fresh ledger over `store`.
async fn two_events<S: steward_core::Store>(store: S) -> steward_core::ledger::Ledger<S> {
    let master = MasterKey::generate().unwrap();
    let vault = Vault::open(store, &master, declaration(), Arc::new(SystemClock))
        .await
        .unwrap();
    let l = ledger(Arc::new(vault), Arc::default()).await;
    let ana = l
        .vault()
        .create(
            &cli(),
            &steward_core::conformance::account("ana@example.com", "Ana"),
        )
        .await
        .unwrap();
    for action in [Action::Grant, Action::Withdraw] {
        l.record(
            &cli(),
            Record {
                party: Party::Subject(ana),
                action,
                purpose: Some("newsletter".into()),
                signal: None,
                link: None,
                version: None,
                method: Method::Api,
                evidence: Evidence {
                    user_agent: Some("Mozilla/5.0".into()),
                    ..Evidence::default()
                },
            },
        )
        .await
        .unwrap();
    }
    l
}

/// The statements tried, in SQLite's words, and whether the database lets each through.
const TRIES: &[(&str, bool)] = &[
    (
        "UPDATE consent_events SET action = 'grant' WHERE seq = 2",
        false,
    ),
    (
        "UPDATE consent_events SET user_agent = 'curl' WHERE seq = 2",
        false,
    ),
    (
        "UPDATE consent_events SET party_kind = 'd', party = zeroblob(16), user_agent = 'x', ip = NULL, redacted = zeroblob(32) WHERE seq = 2",
        false,
    ),
    ("DELETE FROM consent_events WHERE seq = 2", false),
    // Stripped without a seal: refused.
    (
        "UPDATE consent_events SET party_kind = 'd', party = zeroblob(16), user_agent = NULL, ip = NULL WHERE seq = 2",
        false,
    ),
    // Stripped with a seal: let through; only a seal made with the ledger key verifies.
    (
        "UPDATE consent_events SET party_kind = 'd', party = zeroblob(16), user_agent = NULL, ip = NULL, redacted = zeroblob(32) WHERE seq = 2",
        true,
    ),
];

#[tokio::test]
async fn only_the_sweeps_removal_of_a_personal_part_gets_past_the_sqlite_ledger_guard() {
    let dir = tempfile::tempdir().unwrap();
    let store = steward_store::SqliteStore::open(dir.path()).await.unwrap();
    let l = two_events(store).await;
    let mut c = sqlx::SqliteConnection::connect(&format!(
        "sqlite:{}",
        dir.path().join("steward.db").display()
    ))
    .await
    .unwrap();
    for (sql, allowed) in TRIES {
        let done = sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&mut c).await;
        assert_eq!(done.is_ok(), *allowed, "{sql}: {done:?}");
    }
    // The one change the database lets through, made without the ledger key: the chain says so.
    assert!(l.verify(|_| {}).await.is_err());
}

#[tokio::test]
async fn only_the_sweeps_removal_of_a_personal_part_gets_past_the_postgresql_ledger_guard() {
    let Some((url, _guard)) = super::pg_database().await else {
        return;
    };
    let store = steward_store::PgStore::connect(&url).await.unwrap();
    let l = two_events(store).await;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    for (sql, allowed) in TRIES {
        let sql = sql
            .replace("consent_events", "steward.consent_events")
            .replace("zeroblob(16)", &format!("'\\x{}'::bytea", "00".repeat(16)))
            .replace("zeroblob(32)", &format!("'\\x{}'::bytea", "00".repeat(32)));
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut c)
            .await;
        assert_eq!(done.is_ok(), *allowed, "{sql}: {done:?}");
    }
    assert!(l.verify(|_| {}).await.is_err());
}

/// A SQLite vault whose declaration keeps the audit trail 30 days, with 2,500 entries.
async fn trail(
    dir: &std::path::Path,
    clock: &steward_core::ManualClock,
) -> (
    steward_store::SqliteStore,
    Arc<steward_core::ledger::Ledger<steward_store::SqliteStore>>,
) {
    let store = steward_store::SqliteStore::open(dir).await.unwrap();
    let text = format!(
        "{}\n[retention]\naudit = \"30 days\"\n",
        steward_core::conformance::DECLARATION
    );
    let declaration = Arc::new(
        steward_policy::check(&steward_policy::Source::new("c.toml", text))
            .unwrap()
            .declaration
            .unwrap(),
    );
    let master = MasterKey::generate().unwrap();
    let vault = Vault::open(store.clone(), &master, declaration, Arc::new(clock.clone()))
        .await
        .unwrap();
    let l = Arc::new(ledger(Arc::new(vault), Arc::default()).await);
    let entries = (0..2500)
        .map(|_| cli().entry("subject.read", clock.now()))
        .collect();
    store
        .append_audit(entries, l.vault().audit_chain())
        .await
        .unwrap();
    (store, l)
}

async fn connect(dir: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite:{}", dir.join("steward.db").display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn recent_audit_entries_made_to_look_old_are_never_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = steward_core::conformance::clock();
    let (store, l) = trail(dir.path(), &clock).await;
    sqlx::query("UPDATE audit_entries SET at = 0 WHERE seq = 2048")
        .execute(&mut connect(dir.path()).await)
        .await
        .unwrap();
    let sweeper = steward_core::retention::Sweeper::new(Arc::clone(&l), None);
    let refused = sweeper
        .run(&cli(), clock.now(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not intact"), "{refused}");
    assert_eq!(store.audit_entries(0, 10, 10).await.unwrap().len(), 10);
}

#[tokio::test]
async fn an_audit_entry_put_back_below_the_trim_point_is_named_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let clock = steward_core::conformance::clock();
    let (store, l) = trail(dir.path(), &clock).await;
    clock.advance(time::Duration::days(31));
    let sweeper = steward_core::retention::Sweeper::new(Arc::clone(&l), None);
    sweeper.run(&cli(), clock.now(), &mut |_| {}).await.unwrap();
    l.vault().verify_audit(|_, _| {}).await.unwrap().unwrap();
    sqlx::query("INSERT INTO audit_entries SELECT 7, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash FROM audit_entries WHERE seq = 2100")
        .execute(&mut connect(dir.path()).await)
        .await
        .unwrap();
    let broken = l
        .vault()
        .verify_audit(|_, _| {})
        .await
        .unwrap()
        .unwrap_err();
    assert!(broken.to_string().contains("entry 7"), "{broken}");
    let read = store
        .audit_search(&steward_core::audit::AuditFilter::default(), 0, 10)
        .await
        .unwrap();
    assert!(
        read.iter().all(|e| e.seq > 2048),
        "{:?}",
        read.first().map(|e| e.seq)
    );
}
