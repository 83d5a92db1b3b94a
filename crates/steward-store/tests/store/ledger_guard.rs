//! The consent ledger's guard in the database itself: no event is ever changed, but for one
//! change — an event chained over the digest of its personal part loses that part (the
//! retention sweep's `consent-proof` rule) — and after it the chain still verifies.

use std::sync::Arc;

use sqlx::Connection as _;
use steward_core::conformance::{cli, declaration, ledger};
use steward_core::consent::{Action, Evidence, Method, Party};
use steward_core::ledger::Record;
use steward_core::{SystemClock, Vault};
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

/// The statements tried, in SQLite's words, and whether each is let through.
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
        "UPDATE consent_events SET party_kind = 'd', party = zeroblob(16), user_agent = 'x', ip = NULL WHERE seq = 2",
        false,
    ),
    ("DELETE FROM consent_events WHERE seq = 2", false),
    (
        "UPDATE consent_events SET party_kind = 'd', party = zeroblob(16), user_agent = NULL, ip = NULL WHERE seq = 2",
        true,
    ),
];

#[tokio::test]
async fn only_the_removal_of_a_personal_part_gets_past_the_sqlite_ledger_guard() {
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
    l.verify(|_| {}).await.unwrap();
}

#[tokio::test]
async fn only_the_removal_of_a_personal_part_gets_past_the_postgresql_ledger_guard() {
    let Some((url, _guard)) = super::pg_database().await else {
        return;
    };
    let store = steward_store::PgStore::connect(&url).await.unwrap();
    let l = two_events(store).await;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    for (sql, allowed) in TRIES {
        let sql = sql
            .replace("consent_events", "steward.consent_events")
            .replace(
                "zeroblob(16)",
                "'\\x00000000000000000000000000000000'::bytea",
            );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut c)
            .await;
        assert_eq!(done.is_ok(), *allowed, "{sql}: {done:?}");
    }
    l.verify(|_| {}).await.unwrap();
}
