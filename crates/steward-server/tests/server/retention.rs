//! Retention enforced, with the clock moved: the seed sites' periods as sweeps over the vault,
//! the legal holds, finished requests and the outbox — never a day early, never twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use steward_core::retention::{RetentionError, Sweep, Sweeper};
use steward_core::store::prelude::*;
use steward_core::{Access, Clock, Principal, SubjectId};

use super::consent::call;
use super::requests::person;
use super::{App, example, spawn};

fn sweeper(app: &App) -> Sweeper<steward_store::SqliteStore> {
    Sweeper::new(Arc::clone(&app.ledger), Some(app.data_dir().join("outbox")))
}

async fn sweep(app: &App) -> Sweep {
    let now = app.clock.now();
    sweeper(app)
        .run(&Access::new(Principal::cli()), now, &mut |_| {})
        .await
        .unwrap()
}

fn removed(sweep: &Sweep, rule: &str) -> u64 {
    sweep
        .lines
        .iter()
        .filter(|l| l.rule == rule)
        .map(|l| l.due)
        .sum()
}

async fn exists(app: &App, subject: &str) -> bool {
    app.store
        .load_subject(SubjectId(subject.parse().unwrap()))
        .await
        .unwrap()
        .is_some()
}

async fn add_field(app: &App, subject: &str, purpose: &str, category: &str, value: &str) {
    let (status, body) = call(
        app,
        reqwest::Method::PATCH,
        &format!("/v1/subjects/{subject}/fields"),
        &app.dpo,
        Some(json!({ "purpose": purpose, "category": category, "value": value })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

fn outbox_files(app: &App) -> usize {
    std::fs::read_dir(app.data_dir().join("outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn seed_004_a_closed_account_goes_from_day_45_its_invoices_after_ten_years_and_its_request_after_two()
 {
    let app = spawn(example("004-mailpro.toml")).await;
    let subject = person(
        &app,
        "carla.rossi@example.com",
        "account",
        json!({ "user.contact.phone_number": "+39 06 555 0101" }),
    )
    .await;
    add_field(
        &app,
        &subject,
        "invoicing",
        "user.financial",
        "INV-2026-0042 CHF 120",
    )
    .await;
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "erasure", "email": "carla.rossi@example.com", "close_account": true, "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let request = created["id"].as_str().unwrap().to_owned();
    let mut mails = 0;
    for _ in 0..50 {
        mails = outbox_files(&app);
        if mails > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mails > 0, "the closure was mailed");

    // Day 44: nothing of the account is due yet.
    app.clock.advance(time::Duration::days(44));
    let plan = sweeper(&app)
        .plan(&Access::new(Principal::cli()), app.clock.now())
        .await
        .unwrap();
    assert_eq!(removed(&plan, "purpose:account"), 0, "{plan:?}");
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "purpose:account"), 0, "{s:?}");
    assert!(exists(&app, &subject).await, "kept until day 45");
    // Looking ahead: from day 45 the account is due.
    let ahead = sweeper(&app)
        .plan(
            &Access::new(Principal::cli()),
            app.clock.now() + time::Duration::days(1),
        )
        .await
        .unwrap();
    assert!(removed(&ahead, "purpose:account") >= 1, "{ahead:?}");
    // Nothing is swept as of a date still to come.
    let early = sweeper(&app)
        .run(
            &Access::new(Principal::cli()),
            app.clock.now() + time::Duration::days(1),
            &mut |_| {},
        )
        .await;
    assert!(matches!(early, Err(RetentionError::Future(_))), "{early:?}");
    assert!(exists(&app, &subject).await);

    // Day 45: the account goes (the closure's job or the sweep, whichever runs first); the
    // invoices stay under the legal hold.
    app.clock.advance(time::Duration::days(1));
    sweep(&app).await;
    // The sweep may take the account's identity and fields before the closure's job erases
    // the person (once a second): wait for the erasure, which moves the invoices under the hold.
    let id = SubjectId(subject.parse().unwrap());
    let mut held = None;
    for _ in 0..50 {
        held = app
            .store
            .held(id)
            .await
            .unwrap()
            .filter(|h| !h.fields.is_empty());
        if held.is_some() && !exists(&app, &subject).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!exists(&app, &subject).await, "erased on day 45");
    let held = held.expect("the invoices are held");
    assert_eq!(held.fields.len(), 1);
    // A second sweep the same day finds nothing more to do.
    let again = sweep(&app).await;
    assert_eq!(again.total(), 0, "{again:?}");

    // The person is told; then the request is finished.
    for _ in 0..50 {
        let r = app
            .store
            .request(request.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        if r.status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 31 days after the request finished its address is forgotten, and the outbox emptied of
    // messages older than 30 days.
    app.clock.advance(time::Duration::days(31));
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "request-contacts"), 1, "{s:?}");
    assert!(removed(&s, "mail") >= mails as u64, "{s:?}");
    assert!(outbox_files(&app) < mails + 3);
    let record = app
        .store
        .request(request.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(record.contact.is_empty(), "the address is forgotten");

    // The day before ten years from the invoice: still held. Ten years and a day: gone.
    let collected = time::macros::datetime!(2026-11-22 10:00 UTC);
    let ten_years = time::macros::datetime!(2036-11-22 10:00 UTC);
    app.clock
        .advance(ten_years - time::Duration::days(1) - app.clock.now());
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "held"), 0, "{s:?}");
    assert!(app.store.held(id).await.unwrap().is_some());
    // The request's record went after 24 months.
    assert!(
        app.store
            .request(request.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    app.clock.advance(time::Duration::days(2));
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "held"), 1, "{s:?}");
    assert!(
        app.store.held(id).await.unwrap().is_none(),
        "collected {collected}"
    );
    // Every sweep is on the audit chain, which still verifies.
    app.vault.verify_audit(|_, _| {}).await.unwrap().unwrap();
    app.ledger.verify(|_| {}).await.unwrap();
}

#[tokio::test]
async fn seed_003_financial_records_go_after_ten_years_and_not_a_day_before() {
    let app = spawn(example("003-allcot.toml")).await;
    let subject = person(
        &app,
        "ana@example.com",
        "accounts",
        json!({ "user.name": "Ana" }),
    )
    .await;
    add_field(
        &app,
        &subject,
        "financial-records",
        "user.financial",
        "2026 invoice 17",
    )
    .await;
    app.clock
        .advance(time::macros::datetime!(2036-11-21 10:00 UTC) - app.clock.now());
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "purpose:financial-records"), 0, "{s:?}");
    let record = app
        .store
        .load_subject(SubjectId(subject.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record
            .fields
            .iter()
            .any(|f| f.purpose == "financial-records")
    );
    app.clock.advance(time::Duration::days(1));
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "purpose:financial-records"), 1, "{s:?}");
    let record = app
        .store
        .load_subject(SubjectId(subject.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !record
            .fields
            .iter()
            .any(|f| f.purpose == "financial-records")
    );
    // The account itself stays until it is closed.
    assert!(record.fields.iter().any(|f| f.purpose == "accounts"));
}

#[tokio::test]
async fn seed_000_comments_stay() {
    let app = spawn(example("000-mallegro.toml")).await;
    let subject = person(
        &app,
        "commenter@example.com",
        "comments",
        json!({ "user.name": "A commenter", "user.content.public": "Nice post" }),
    )
    .await;
    app.clock.advance(time::Duration::days(365 * 50));
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "purpose:comments"), 0, "{s:?}");
    let record = app
        .store
        .load_subject(SubjectId(subject.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.fields.len(), 2);
}

#[tokio::test]
async fn a_withdrawn_newsletter_consent_takes_its_data_and_leaves_its_proof() {
    let app = spawn(example("004-mailpro.toml")).await;
    let subject = person(
        &app,
        "reader@example.com",
        "newsletter",
        json!({ "user.name": "Reader" }),
    )
    .await;
    let other = person(
        &app,
        "stays@example.com",
        "newsletter",
        json!({ "user.name": "Stays" }),
    )
    .await;
    for who in [&subject, &other] {
        let (status, body) = call(
            &app,
            reqwest::Method::POST,
            "/v1/consent",
            &app.service,
            Some(json!({ "subject": who, "action": "grant", "purpose": "newsletter" })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "subject": subject, "action": "withdraw", "purpose": "newsletter" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let events_before = app.ledger.verify(|_| {}).await.unwrap();
    let s = sweep(&app).await;
    assert_eq!(s.subjects_erased, 1, "{s:?}");
    assert!(!exists(&app, &subject).await, "withdrawn: their data goes");
    assert!(exists(&app, &other).await, "still subscribed: kept");
    // The proof stays: the ledger keeps every event (and adds the erasure), and verifies.
    let events_after = app.ledger.verify(|_| {}).await.unwrap();
    assert!(events_after > events_before);
    app.vault.verify_audit(|_, _| {}).await.unwrap().unwrap();
    // Idempotent.
    assert_eq!(sweep(&app).await.total(), 0);

    // Three years on ([retention] consent_proof), the proof's personal part goes: the
    // reader's grant and withdrawal no longer name anyone (the record of their erasure names
    // an id whose key is gone), the other's grant still does, and both chains verify.
    use steward_core::store::prelude::*;
    let theirs = |events: &[steward_core::consent::SealedEvent], who: &str| {
        let id = SubjectId(who.parse().unwrap());
        events
            .iter()
            .filter(|e| {
                e.event.party == steward_core::consent::Party::Subject(id)
                    && e.event.purpose.as_deref() == Some("newsletter")
            })
            .count()
    };
    let events = app.store.consent_events(0, 1000).await.unwrap();
    assert!(theirs(&events, &subject) >= 2);
    app.clock.advance(time::Duration::days(3 * 366));
    let (_, permit_before) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={other}&purpose=newsletter"),
        &app.service,
        None,
    )
    .await;
    let s = sweep(&app).await;
    assert_eq!(removed(&s, "consent-proof"), 2, "{s:?}");
    let events = app.store.consent_events(0, 1000).await.unwrap();
    assert_eq!(theirs(&events, &subject), 0);
    assert_eq!(theirs(&events, &other), 1);
    assert_eq!(events.iter().filter(|e| e.is_redacted()).count(), 2);
    assert_eq!(app.ledger.verify(|_| {}).await.unwrap(), events_after);
    app.vault.verify_audit(|_, _| {}).await.unwrap().unwrap();
    assert_eq!(sweep(&app).await.total(), 0);
    // The still-subscribed reader's permit is what it was before the sweep.
    let (status, after) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={other}&purpose=newsletter"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, permit_before);
}

#[tokio::test]
async fn inactivity_counts_from_the_last_recorded_activity() {
    let app = spawn(example("001-wordpress-support-portal.toml")).await;
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        &app.service,
        Some(json!({ "purpose": "sign-in", "identities": [{ "kind": "username", "value": "signin" }], "fields": {} })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let subject = created["id"].as_str().unwrap().to_owned();
    app.clock.advance(time::Duration::days(20));
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/subjects/{subject}/activity"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // A body that is not the documented one gets the API's JSON problem, not a bare text.
    for bad in [json!([null, null]), json!({ "contract": "paused" })] {
        let (status, problem) = call(
            &app,
            reqwest::Method::POST,
            &format!("/v1/subjects/{subject}/activity"),
            &app.service,
            Some(bad),
        )
        .await;
        assert!(status == 400 || status == 422, "{status} {problem}");
        assert!(problem["error"].is_string(), "{problem}");
    }
    // 30 days after creation, but 10 after the activity: kept.
    app.clock.advance(time::Duration::days(10));
    sweep(&app).await;
    assert!(exists(&app, &subject).await);
    app.clock.advance(time::Duration::days(21));
    let s = sweep(&app).await;
    assert!(!exists(&app, &subject).await, "{s:?}");
    // A key narrowed to one purpose may not move the periods of every purpose, and learns
    // nothing of who exists: 403 for a known person and an unknown one alike.
    let narrowed = app
        .key(
            steward_core::Role::Service,
            steward_core::Scope {
                purposes: vec!["support".into()],
                ..steward_core::Scope::default()
            },
        )
        .await;
    for id in [subject.clone(), uuid::Uuid::new_v4().to_string()] {
        let (status, _) = call(
            &app,
            reqwest::Method::POST,
            &format!("/v1/subjects/{id}/activity"),
            &narrowed,
            Some(json!({ "contract": "ended" })),
        )
        .await;
        assert_eq!(status, 403);
    }
    // An unknown subject: 404, as everywhere.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/subjects/{}/activity", uuid::Uuid::new_v4()),
        &app.service,
        Some(json!({ "contract": "ended" })),
    )
    .await;
    assert_eq!(status, 404);
}
