//! Data-subject requests over HTTP with a real SMTP sink and the clock moved: verification by
//! link and by code, the access package opened with real ZIP and spreadsheet readers, erasure
//! by account closure after the declared delay with invoices kept, rectification with
//! recipients told by signed webhook, approval, denial, extension, expiry, and bad input.

use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steward_core::store::prelude::*;

use calamine::Reader;
use serde_json::{Value, json};

use super::consent::{Sink, call, link_in, token_of, unfold};
use super::{App, declaration, example_text, spawn_full};

pub(crate) async fn served(text: String, sink: &Sink) -> App {
    let mailer = Arc::new(
        steward_server::mail::SmtpMailer::new(
            &format!("smtp://127.0.0.1:{}", sink.port),
            "Mailpro Privacy <privacy@mailpro.example>",
        )
        .unwrap(),
    );
    spawn_full(
        declaration("004-mailpro.toml", text),
        steward_server::ServerConfig::default(),
        mailer,
        tempfile::tempdir().unwrap(),
    )
    .await
}

/// Waits (at most 15 s) for a mail to `to` that contains `needle`; returns it unfolded.
pub(crate) async fn mail_to(sink: &Sink, to: &str, needle: &str) -> String {
    for _ in 0..150 {
        if let Some(m) = sink
            .all()
            .into_iter()
            .map(|m| unfold(&m))
            .find(|m| m.contains(&format!("To: {to}")) && m.contains(needle))
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} with `{needle}`");
}

pub(crate) async fn person(app: &App, email: &str, purpose: &str, fields: Value) -> String {
    let (status, created) = call(
        app,
        reqwest::Method::POST,
        "/v1/subjects",
        &app.service,
        Some(json!({
            "purpose": purpose,
            "identities": [{ "kind": "email", "value": email }],
            "fields": fields
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn public(app: &App, body: Value) -> (u16, Value) {
    let r = crate::client()
        .post(app.url("/requests"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub(crate) async fn show(app: &App, id: &str) -> Value {
    let (status, body) = call(
        app,
        reqwest::Method::GET,
        &format!("/v1/requests/{id}"),
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits (at most 15 s) until the request reaches `status`.
pub(crate) async fn reaches(app: &App, id: &str, status: &str) -> Value {
    for _ in 0..150 {
        let body = show(app, id).await;
        if body["status"] == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "request {id} never reached {status}: {}",
        show(app, id).await
    );
}

#[tokio::test]
async fn an_access_request_is_verified_by_link_and_its_package_holds_only_that_person() {
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    person(
        &app,
        "ana.lopez@example.com",
        "account",
        json!({ "user.name": "Ana Lopez", "user.contact.phone_number": "+41 44 555 01 01" }),
    )
    .await;
    person(
        &app,
        "bo.berg@example.com",
        "account",
        json!({ "user.name": "Bo Berg", "user.contact.phone_number": "+41 44 555 02 02" }),
    )
    .await;

    // Known and unknown addresses get the same answer.
    let (status, known) = public(
        &app,
        json!({ "kind": "access", "email": "ana.lopez@example.com" }),
    )
    .await;
    assert_eq!(status, 202, "{known}");
    let (status, unknown) = public(
        &app,
        json!({ "kind": "access", "email": "nobody@example.com" }),
    )
    .await;
    assert_eq!(status, 202, "{unknown}");
    let shape = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(shape(&known), shape(&unknown));
    assert_eq!(known["status"], "awaiting-verification");
    // One month, clamped: received 22 Nov, due 22 Dec.
    assert!(
        known["due_at"].as_str().unwrap().starts_with("2026-12-22"),
        "{known}"
    );
    let id = known["id"].as_str().unwrap().to_owned();

    let mail = mail_to(&sink, "ana.lopez@example.com", "/requests/verify").await;
    let link = link_in(&mail, "/requests/verify");
    // Opening the link only shows a button.
    let page = crate::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert_eq!(show(&app, &id).await["status"], "awaiting-verification");
    let client = crate::client();
    let confirmed = client
        .post(&link)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    // The same link again: used.
    let again = client
        .post(&link)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "used-token");
    // Opened again, the page says so rather than offering a button that fails.
    let used = crate::get(&link).await.unwrap();
    assert_eq!(used.status(), 409);
    let text = used.text().await.unwrap();
    assert!(
        text.contains("This link does not work") && !text.contains("<form"),
        "{text}"
    );
    // A code for a request confirmed by link is told so.
    let (status, body) = public(
        &app,
        json!({ "kind": "access", "email": "code@example.com" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let r = client
        .post(app.url(&format!(
            "/requests/{}/verify",
            body["id"].as_str().unwrap()
        )))
        .json(&json!({ "code": "123456" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not-by-code");

    let done = mail_to(&sink, "ana.lopez@example.com", "/package?token=").await;
    let download = link_in(&done, &format!("/requests/{id}/package"));
    let shown = reaches(&app, &id, "completed").await;
    assert_eq!(shown["verification"]["method"], "email-link");

    let response = crate::get(&download).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    for expected in [
        "index.html",
        "data.json",
        "data.xlsx",
        "csv/fields.csv",
        "csv/consent.csv",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let html = read("index.html");
    assert!(html.contains("Ana Lopez"));
    assert!(html.contains("Why we use your data"));
    assert!(html.contains("Swiss accounting law") || html.contains("legal-obligation"));
    assert!(html.contains("supervisory authority"));
    let json: Value = serde_json::from_str(&read("data.json")).unwrap();
    assert!(json["information"]["purposes"].as_array().unwrap().len() >= 3);
    let csv = read("csv/fields.csv");
    assert!(csv.starts_with(
        "Data,Value,Purpose,Why we hold it,Source,Collected,category,purpose,collected_at"
    ));
    assert!(
        csv.contains("Your account and our software (contract)"),
        "each field says why it is held: {csv}"
    );
    assert!(csv.contains("+41 44 555 01 01"));
    // Nothing of the other person anywhere in the package.
    for name in &names {
        let mut raw = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("Bo Berg") && !text.contains("555 02 02"),
            "{name} holds B's data"
        );
    }
    // The spreadsheet, read by a real reader.
    let mut xlsx_bytes = Vec::new();
    zip.by_name("data.xlsx")
        .unwrap()
        .read_to_end(&mut xlsx_bytes)
        .unwrap();
    let mut book = calamine::Xlsx::new(Cursor::new(xlsx_bytes)).unwrap();
    assert!(book.sheet_names().contains(&"fields".to_owned()));
    let sheet = book.worksheet_range("fields").unwrap();
    let cells: Vec<String> = sheet.cells().map(|(_, _, c)| c.to_string()).collect();
    assert!(cells.contains(&"Ana Lopez".to_owned()), "{cells:?}");
    assert!(!cells.iter().any(|c| c.contains("Bo Berg")));

    // Another request's link does not open this package; a forged one neither.
    let (_, other) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "access", "email": "bo.berg@example.com", "vouch": true })),
    )
    .await;
    let other_id = other["id"].as_str().unwrap();
    let token = token_of(&download);
    let wrong = crate::get(app.url(&format!("/requests/{other_id}/package?token={token}")))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "wrong-request"
    );
    let mut forged = token.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = crate::get(app.url(&format!("/requests/{id}/package?token={forged}")))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // Three days later the link has expired.
    app.clock
        .advance(time::Duration::days(3) + time::Duration::minutes(1));
    let expired = crate::get(&download).await.unwrap();
    assert_eq!(expired.status(), 410);

    // The unknown address was verified the same way and answered "nothing held".
    let unknown_mail = mail_to(&sink, "nobody@example.com", "/requests/verify").await;
    assert!(unknown_mail.contains("If it was you, confirm it here"));

    // Every step is audited, and no address is in the audit.
    let entries = app.store.audit_entries(0, u64::MAX, 10_000).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.entry.action.as_str()).collect();
    for a in [
        "request.create",
        "request.verified",
        "request.executing",
        "request.completed",
        "request.download",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    let dump = format!("{entries:?}");
    assert!(!dump.contains("ana.lopez") && !dump.contains("nobody@"));
}

#[tokio::test]
async fn closing_an_account_erases_it_after_the_declared_delay_and_keeps_the_invoices() {
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    let subject = person(
        &app,
        "carla.rossi@example.com",
        "account",
        json!({ "user.contact.phone_number": "+39 06 555 0303" }),
    )
    .await;
    for (category, value) in [
        ("user.name", "Carla Rossi"),
        ("user.financial", "Invoice 2026-114, CHF 240"),
    ] {
        let (status, body) = call(
            &app,
            reqwest::Method::PATCH,
            &format!("/v1/subjects/{subject}/fields"),
            &app.service,
            Some(json!({ "purpose": "invoicing", "category": category, "value": value })),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    // The application vouches for the signed-in person closing their account. Its service key
    // may not erase, so the closure waits for a role that may.
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "erasure", "email": "carla.rossi@example.com", "close_account": true, "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "awaiting-approval", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{id}/approve"),
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "executing");
    // 45 to 60 days: erased 45 days after closure.
    let erase_at = created["outcome"]["erase_at"].as_str().unwrap();
    assert!(erase_at.starts_with("2027-01-06"), "{created}");
    // The account is closed at once: permits say so.
    let (_, permit) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={subject}&purpose=account"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(permit["reason"], "account-closed", "{permit}");
    mail_to(&sink, "carla.rossi@example.com", "Your account is closed").await;
    assert_eq!(show(&app, &id).await["status"], "executing");
    // A second account closed the same day: both erasures come due together (one batch).
    let other = person(
        &app,
        "dario.bianchi@example.com",
        "account",
        json!({ "user.contact.phone_number": "+39 06 555 0404" }),
    )
    .await;
    // A key that may erase directly closes the account at once.
    let (status, second) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "erasure", "email": "dario.bianchi@example.com", "close_account": true, "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["status"], "executing", "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    // Still held after 44 days.
    app.clock.advance(time::Duration::days(44));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        app.store
            .load_subject(steward_core::SubjectId(subject.parse().unwrap()))
            .await
            .unwrap()
            .is_some()
    );
    // Day 45: erased, the invoices kept with the reason, the person told.
    app.clock.advance(time::Duration::days(1));
    let mail = mail_to(&sink, "carla.rossi@example.com", "Your data was erased").await;
    assert!(mail.contains("Swiss accounting law"), "{mail}");
    let shown = reaches(&app, &id, "completed").await;
    let retained = shown["outcome"]["retained"].as_array().unwrap();
    assert!(
        retained.iter().any(|r| r["category"] == "user.financial"
            && r["reason"]
                .as_str()
                .unwrap()
                .contains("Code of Obligations")),
        "{shown}"
    );
    let removed = shown["outcome"]["removed"].as_array().unwrap();
    assert!(
        removed.contains(&json!("user.contact.email"))
            && removed.contains(&json!("user.contact.phone_number")),
        "{shown}"
    );
    for gone in [&subject, &other] {
        assert!(
            app.store
                .load_subject(steward_core::SubjectId(gone.parse().unwrap()))
                .await
                .unwrap()
                .is_none()
        );
    }
    let shown = reaches(&app, &second, "completed").await;
    assert!(
        shown["outcome"]["retained"]
            .as_array()
            .is_none_or(Vec::is_empty)
            && shown["outcome"]["removed"]
                .as_array()
                .unwrap()
                .contains(&json!("user.contact.phone_number")),
        "{shown}"
    );
    mail_to(&sink, "dario.bianchi@example.com", "Your data was erased").await;
}

/// A recipient's webhook endpoint on loopback that keeps what it is sent.
pub(crate) async fn webhook() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = Arc::clone(&kept);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let k = Arc::clone(&k);
            async move {
                let sig = headers
                    .get("steward-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                k.lock().unwrap().push((sig, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, kept)
}

#[tokio::test]
async fn a_rectification_by_code_changes_the_data_tells_the_person_and_the_recipients() {
    let sink = Sink::start().await;
    let (hook, received) = webhook().await;
    let text = example_text("004-mailpro.toml")
        .replace(
            "verification = [\"account\", \"email-link\"]",
            "verification = [\"email-code\", \"account\"]\nimmutable = [\"user.account.username\"]",
        )
        .replace(
            ZENDESK_CONTACT,
            &format!("categories = [\"user.name\", \"user.contact.email\"]\ncontact = \"{hook}\""),
        );
    let app = served(text, &sink).await;
    let subject = person(
        &app,
        "dev.shah@example.com",
        "support",
        json!({ "user.name": "Dev Sha" }),
    )
    .await;

    // An immutable field is refused at once, with the reason.
    let (status, refused) = public(
        &app,
        json!({ "kind": "rectification", "email": "dev.shah@example.com", "changes": { "user.account.username": "dev2" } }),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"], "immutable");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("never be changed")
    );

    let (status, created) = public(
        &app,
        json!({ "kind": "rectification", "email": "dev.shah@example.com", "changes": { "user.name": "Dev Shah" } }),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mail = mail_to(&sink, "dev.shah@example.com", "your verification code").await;
    let code: String = mail
        .split("enter this code where you made the request: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let client = crate::client();
    let attempt = |c: &str| {
        client
            .post(app.url(&format!("/requests/{id}/verify")))
            .json(&json!({ "code": c }))
            .send()
    };
    let r = attempt(wrong).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "wrong-code");
    let r = attempt(&code).await.unwrap();
    assert_eq!(r.status(), 200);

    let done = mail_to(&sink, "dev.shah@example.com", "Your data was changed").await;
    assert!(
        done.contains("Changed: Name") && !done.contains("user.name"),
        "the person reads the taxonomy's names, never keys: {done}"
    );
    let shown = reaches(&app, &id, "completed").await;
    assert_eq!(shown["outcome"]["changed"], json!(["user.name"]));
    // The vault holds the new value.
    let (_, read) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{subject}"),
        &app.dpo,
        None,
    )
    .await;
    let _ = read;
    let export = crate::client()
        .get(app.url(&format!("/v1/subjects/{subject}/export")))
        .bearer_auth(&app.dpo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.contains("Dev Shah"), "{export}");

    // Art. 19: the recipient got a signed webhook, and acknowledges it.
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (signature, body) = received
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("a webhook");
    let notice: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notice["request"], id.as_str());
    assert_eq!(notice["categories"], json!(["user.name"]));
    assert_eq!(
        (&notice["identities"], &notice["changes"]),
        (
            &json!({ "email": "dev.shah@example.com" }),
            &json!({ "user.name": "Dev Shah" })
        ),
        "the recipient is told whom, and the new value of what it receives"
    );
    assert!(
        verifies(&signature, &body, &secret_of(&app, "zendesk").await),
        "{signature}"
    );
    let shown = reaches(&app, &id, "completed").await;
    assert_eq!(shown["notifications"][0]["status"], "delivered", "{shown}");
    acknowledge(&notice).await;
    let shown = show(&app, &id).await;
    assert_eq!(shown["notifications"][0]["status"], "acknowledged");
}

/// Shows `recipient`'s signing secret, as `steward recipient secret` does.
pub(crate) async fn secret_of(app: &App, recipient: &str) -> String {
    steward_server::requests::workflow(&app.ledger, &std::sync::Arc::default())
        .recipient_secret(
            &steward_core::Access::new(steward_core::Principal::cli()),
            recipient,
            false,
        )
        .await
        .unwrap()
        .secret
}

/// Checks a `Steward-Signature` the way a recipient would, with its own HMAC: true when one of
/// its `v1=` values is the HMAC-SHA256 of `"<t>.<body>"` under the hex-decoded secret.
pub(crate) fn verifies(signature: &str, body: &str, secret_hex: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let key: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).unwrap())
        .collect();
    let Some(t) = signature.split(',').find_map(|p| p.strip_prefix("t=")) else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    signature
        .split(',')
        .filter_map(|p| p.strip_prefix("v1="))
        .any(|v| v == expected)
}

/// The recipient follows the `acknowledge` link of its notice, as a webhook receiver would.
async fn acknowledge(notice: &Value) -> Value {
    let r = crate::client()
        .post(notice["acknowledge"].as_str().unwrap())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Waits (at most 15 s) until `received` holds `n` webhooks; returns them.
pub(crate) async fn webhooks(
    received: &Arc<Mutex<Vec<(String, String)>>>,
    n: usize,
) -> Vec<(String, String)> {
    for _ in 0..150 {
        let got = received.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} webhooks never came: {:?}", received.lock().unwrap());
}

/// Mailpro with zendesk told at `contact`, its categories left to the documented default.
fn mailpro_telling_zendesk(contact: &str) -> String {
    example_text("004-mailpro.toml").replace(ZENDESK_CONTACT, &format!("contact = \"{contact}\""))
}

/// Where seed 004 tells Zendesk, replaced by a test's own webhook.
const ZENDESK_CONTACT: &str = "contact = \"https://mailpro.example/hooks/steward-zendesk\"";

/// A vouched rectification of `email`'s name by the DPO; its id once completed.
async fn rename(app: &App, email: &str, name: &str) -> Value {
    let (status, created) = call(
        app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "rectification", "email": email, "changes": { "user.name": name }, "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    reaches(app, created["id"].as_str().unwrap(), "completed").await
}

#[tokio::test]
async fn a_recipient_named_by_its_purposes_is_told_checks_its_own_signature_and_alone_acknowledges()
{
    let sink = Sink::start().await;
    let (hook, received) = webhook().await;
    let app = served(mailpro_telling_zendesk(&hook), &sink).await;
    // The documented default: zendesk receives what `support`, which names it, collects.
    let zendesk = app
        .ledger
        .vault()
        .declaration()
        .processors
        .iter()
        .find(|p| p.id == "zendesk")
        .unwrap()
        .clone();
    assert!(zendesk.categories_from_purposes);
    assert!(zendesk.categories.contains(&"user.name".to_owned()));

    let secret = secret_of(&app, "zendesk").await;
    assert_eq!(secret.len(), 64);
    let again = steward_server::requests::workflow(&app.ledger, &std::sync::Arc::default())
        .recipient_secret(
            &steward_core::Access::new(steward_core::Principal::cli()),
            "zendesk",
            false,
        )
        .await;
    assert!(
        matches!(
            again,
            Err(steward_core::requests::RequestError::SecretShown { .. })
        ),
        "a secret is shown once: {again:?}"
    );

    person(
        &app,
        "lee@example.com",
        "support",
        json!({ "user.name": "Lee Smit" }),
    )
    .await;
    let done = rename(&app, "lee@example.com", "Lee Smith").await;
    let id = done["id"].as_str().unwrap().to_owned();
    let (signature, body) = webhooks(&received, 1).await[0].clone();
    let notice: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (notice["request"].as_str(), notice["recipient"].as_str()),
        (Some(id.as_str()), Some("zendesk"))
    );
    assert_eq!(notice["categories"], json!(["user.name"]));
    assert_eq!(
        (&notice["identities"], &notice["changes"]),
        (
            &json!({ "email": "lee@example.com" }),
            &json!({ "user.name": "Lee Smith" })
        ),
        "whom (an address zendesk receives) and the new value, nothing else: {body}"
    );
    assert!(!body.contains("Lee Smit\""), "never the old value: {body}");
    assert!(verifies(&signature, &body, &secret), "{signature}");
    assert!(
        !verifies(&signature, &body, &"0".repeat(64)),
        "a wrong secret does not verify"
    );

    let shown = reaches(&app, &id, "completed").await;
    let n = &shown["notifications"][0];
    assert_eq!(
        (
            n["status"].as_str(),
            n["attempts"].as_u64(),
            &n["last_error"]
        ),
        (Some("delivered"), Some(1), &Value::Null),
        "{shown}"
    );
    assert!(
        shown["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "notify" && j["recipient"] == "zendesk" && j["done"] == true),
        "{shown}"
    );

    // No API key acknowledges for a recipient: a service key is refused, and a staff
    // acknowledgement needs `decide`.
    let (status, refused) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{id}/notifications/zendesk/ack"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("operation-not-allowed")),
        "{refused}"
    );
    // zendesk's link does not acknowledge for another recipient, nor for another request.
    let link = notice["acknowledge"].as_str().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    for (path, what) in [
        (
            format!("/requests/{id}/notifications/google/ack?token={token}"),
            "another recipient",
        ),
        (
            format!(
                "/requests/{}/notifications/zendesk/ack?token={token}",
                uuid::Uuid::now_v7()
            ),
            "another request",
        ),
        (
            format!(
                "/requests/{id}/notifications/zendesk/ack?token={}",
                "0".repeat(64)
            ),
            "a forged token",
        ),
    ] {
        let r = crate::client()
            .post(app.url(&path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{what}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "unknown-notice",
            "{what}"
        );
    }
    // Opening the link in a browser changes nothing; the button does.
    let page = crate::get(link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("We have applied it"));
    assert_eq!(
        show(&app, &id).await["notifications"][0]["status"],
        "delivered"
    );
    let acked = acknowledge(&notice).await;
    assert_eq!(acked["recipient"], "zendesk");
    let shown = show(&app, &id).await;
    assert_eq!(shown["notifications"][0]["status"], "acknowledged");
    let entries = app
        .store
        .audit_search(
            &steward_core::audit::AuditFilter {
                actor: Some("recipient:zendesk".to_owned()),
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.entry.action == "request.acknowledge" && e.entry.role == "recipient"),
        "the audit names the recipient: {entries:?}"
    );

    // Rotation: the next notice carries the new signature and, for a day, the old one too.
    let rotated = steward_server::requests::workflow(&app.ledger, &std::sync::Arc::default())
        .recipient_secret(
            &steward_core::Access::new(steward_core::Principal::cli()),
            "zendesk",
            true,
        )
        .await
        .unwrap();
    assert_eq!(rotated.generation, 2);
    assert_ne!(rotated.secret, secret);
    rename(&app, "lee@example.com", "Lee A. Smith").await;
    let (signature, body) = webhooks(&received, 2).await[1].clone();
    assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
    assert!(verifies(&signature, &body, &rotated.secret));
    assert!(verifies(&signature, &body, &secret));
    app.clock.advance(time::Duration::hours(25));
    rename(&app, "lee@example.com", "Lee Smith").await;
    let (signature, body) = webhooks(&received, 3).await[2].clone();
    assert!(verifies(&signature, &body, &rotated.secret));
    assert!(
        !verifies(&signature, &body, &secret),
        "a day after the rotation the old secret no longer signs: {signature}"
    );
}

#[tokio::test]
async fn a_recipient_is_told_only_of_data_collected_for_the_purposes_that_name_it() {
    let sink = Sink::start().await;
    let (hook, received) = webhook().await;
    let app = served(mailpro_telling_zendesk(&hook), &sink).await;
    // Only an account: zendesk (a recipient of `support`) never had any of it.
    person(
        &app,
        "acc@example.com",
        "account",
        json!({ "user.name": "Ada Account" }),
    )
    .await;
    // Support data too: zendesk had it, and is told.
    let sam = person(
        &app,
        "sam@example.com",
        "support",
        json!({ "user.name": "Sam Support" }),
    )
    .await;
    for email in ["acc@example.com", "sam@example.com"] {
        let (status, created) = call(
            &app,
            reqwest::Method::POST,
            "/v1/requests",
            &app.dpo,
            Some(json!({ "kind": "erasure", "email": email, "vouch": true })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let done = reaches(&app, created["id"].as_str().unwrap(), "completed").await;
        let told: Vec<&str> = done["notifications"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n["recipient"].as_str().unwrap())
            .collect();
        if email == "acc@example.com" {
            assert!(
                told.is_empty(),
                "nothing of this person went to zendesk: {done}"
            );
        } else {
            assert_eq!(told, ["zendesk"], "{done}");
            assert!(
                done["notifications"][0].get("sealed").is_none(),
                "what the recipient is told is never in a view: {done}"
            );
        }
    }
    let (_, body) = webhooks(&received, 1).await[0].clone();
    let notice: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notice["kind"], "erasure");
    assert_eq!(notice["subject"], sam.as_str());
    assert_eq!(
        notice["identities"],
        json!({ "email": "sam@example.com" }),
        "the recipient can find whom to erase: {body}"
    );
    assert_eq!(notice["changes"], json!({}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "one notice, for Sam only"
    );
}

#[tokio::test]
async fn a_correction_to_an_address_someone_else_has_is_refused_alone_and_the_request_completes() {
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    person(
        &app,
        "carol@example.com",
        "account",
        json!({ "user.name": "Carol" }),
    )
    .await;
    person(
        &app,
        "eve@example.com",
        "account",
        json!({ "user.name": "Eve" }),
    )
    .await;
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "rectification", "email": "carol@example.com",
            "changes": { "user.name": "Carol Jones", "user.contact.email": "eve@example.com" }, "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "no 500: {created}");
    let done = reaches(&app, created["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["outcome"]["changed"], json!(["user.name"]), "{done}");
    assert_eq!(
        done["outcome"]["not_changed"],
        json!([["user.contact.email", "duplicate-identity"]]),
        "{done}"
    );
    let mail = mail_to(&sink, "carol@example.com", "We could not make this change").await;
    assert!(
        mail.contains("could not make this change: E-mail address")
            && !mail.contains("user.contact.email")
            && !mail.contains("eve@"),
        "{mail}"
    );
}

/// A recipient endpoint that answers every webhook with `status`.
async fn failing_webhook(status: u16) -> String {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move || async move { axum::http::StatusCode::from_u16(status).unwrap() },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

/// Waits (at most 15 s) until `id`'s first notice records an error; the request as shown.
async fn notice_fails(app: &App, id: &str) -> Value {
    for _ in 0..150 {
        let shown = show(app, id).await;
        if !shown["notifications"][0]["last_error"].is_null() {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the notice never failed: {}", show(app, id).await);
}

#[tokio::test]
async fn an_undelivered_notice_says_why_in_the_request_and_its_queued_work() {
    let sink = Sink::start().await;
    // Nothing listens on a port just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (contact, cause) in [
        (
            format!("http://127.0.0.1:{closed}/hook"),
            "webhook-unreachable".to_owned(),
        ),
        (failing_webhook(503).await, "webhook-status-503".to_owned()),
    ] {
        let app = served(mailpro_telling_zendesk(&contact), &sink).await;
        person(
            &app,
            "kim@example.com",
            "support",
            json!({ "user.name": "Kim Lee" }),
        )
        .await;
        let (status, created) = call(
            &app,
            reqwest::Method::POST,
            "/v1/requests",
            &app.dpo,
            Some(json!({ "kind": "rectification", "email": "kim@example.com", "changes": { "user.name": "Kim Li" }, "vouch": true })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let shown = notice_fails(&app, created["id"].as_str().unwrap()).await;
        let n = &shown["notifications"][0];
        assert_eq!(n["last_error"], cause.as_str(), "{shown}");
        assert_eq!(n["status"], "pending");
        assert!(n["attempts"].as_u64().unwrap() >= 1);
        let job = shown["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == "notify")
            .cloned()
            .unwrap();
        assert_eq!(
            (
                job["recipient"].as_str(),
                job["last_error"].as_str(),
                job["done"].as_bool()
            ),
            (Some("zendesk"), Some(cause.as_str()), Some(false)),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn staff_approve_deny_and_extend_on_the_declared_calendar_and_unverified_requests_expire() {
    let sink = Sink::start().await;
    let text = example_text("004-mailpro.toml").replace(
        "contact = \"legal@maxony.com\"",
        "contact = \"legal@maxony.com\"\napproval = true\nacknowledge = \"10 business days\"\nunverified_expire = \"7 days\"",
    );
    let app = served(text, &sink).await;
    let subject = person(
        &app,
        "eva.ng@example.com",
        "newsletter",
        json!({ "user.name": "Eva Ng" }),
    )
    .await;

    // Unknown kind, a purpose on an access request, an objection to a contract purpose.
    for (body, code) in [
        (
            json!({ "kind": "delete-everything", "email": "eva.ng@example.com" }),
            "unknown-kind",
        ),
        (
            json!({ "kind": "access", "email": "eva.ng@example.com", "purpose": "newsletter" }),
            "invalid-request",
        ),
        (
            json!({ "kind": "objection", "email": "eva.ng@example.com", "purpose": "account" }),
            "purpose-not-applicable",
        ),
        (
            json!({ "kind": "access", "email": "not an address" }),
            "invalid-email",
        ),
        (
            json!({ "kind": "access", "email": "eva.ng@example.com", "surprise": 1 }),
            "invalid-body",
        ),
    ] {
        let (status, refused) = call(
            &app,
            reqwest::Method::POST,
            "/v1/requests",
            &app.service,
            Some(body),
        )
        .await;
        assert!(status == 400 || status == 422, "{status} {refused}");
        assert_eq!(refused["error"], code, "{refused}");
    }
    let (count, _) = call(&app, reqwest::Method::GET, "/v1/requests", &app.dpo, None).await;
    assert_eq!(count, 200);

    // A withdrawal vouched for waits for approval; receipt is acknowledged by mail.
    let (_, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "withdraw-consent", "email": "eva.ng@example.com", "purpose": "newsletter", "vouch": true })),
    )
    .await;
    assert_eq!(created["status"], "awaiting-approval", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    mail_to(&sink, "eva.ng@example.com", "we received your request").await;
    let mut acknowledged = false;
    for _ in 0..100 {
        if show(&app, &id).await["acknowledged_at"].is_string() {
            acknowledged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(acknowledged, "receipt never marked acknowledged");
    // The service key may not approve; the DPO may, once.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{id}/approve"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, approved) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{id}/approve"),
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    let (status, twice) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{id}/approve"),
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(twice["error"], "wrong-state");
    let (_, permit) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={subject}&purpose=newsletter"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(permit["reason"], "withdrawn", "{permit}");
    reaches(&app, &id, "completed").await;

    // An access request waiting for approval: extended once (+2 months from the first due
    // date), then denied with a reason the person reads.
    let (_, access) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "access", "email": "eva.ng@example.com", "vouch": true })),
    )
    .await;
    let aid = access["id"].as_str().unwrap().to_owned();
    assert!(access["due_at"].as_str().unwrap().starts_with("2026-12-22"));
    let (status, extended) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{aid}/extend"),
        &app.dpo,
        Some(json!({ "reason": "Your data is spread over several archived systems." })),
    )
    .await;
    assert_eq!(status, 200, "{extended}");
    assert!(
        extended["due_at"]
            .as_str()
            .unwrap()
            .starts_with("2027-02-22"),
        "{extended}"
    );
    let (status, again) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{aid}/extend"),
        &app.dpo,
        Some(json!({ "reason": "more" })),
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("already-extended"))
    );
    mail_to(
        &sink,
        "eva.ng@example.com",
        "spread over several archived systems",
    )
    .await;
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{aid}/deny"),
        &app.dpo,
        Some(json!({ "reason": "" })),
    )
    .await;
    assert_eq!(status, 400);
    let (status, denied) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{aid}/deny"),
        &app.dpo,
        Some(json!({ "reason": "We could not confirm the account belongs to you." })),
    )
    .await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["status"], "denied");
    mail_to(&sink, "eva.ng@example.com", "could not confirm the account").await;

    // A public request nobody verifies: overdue after its due date, expired after 7 days.
    let (_, open) = public(
        &app,
        json!({ "kind": "erasure", "email": "ola.nordmann@example.com" }),
    )
    .await;
    let oid = open["id"].as_str().unwrap().to_owned();
    let (_, overdue) = call(
        &app,
        reqwest::Method::GET,
        "/v1/requests?overdue=true",
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(overdue["requests"].as_array().unwrap().len(), 0);
    app.clock.advance(time::Duration::days(8));
    reaches(&app, &oid, "expired").await;
    let (_, soon) = call(
        &app,
        reqwest::Method::GET,
        "/v1/requests?status=open&due_before=2027-01-01T00:00:00Z",
        &app.dpo,
        None,
    )
    .await;
    assert!(
        soon["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "expired")
    );
    let (status, bad) = call(
        &app,
        reqwest::Method::GET,
        "/v1/requests?status=lost",
        &app.dpo,
        None,
    )
    .await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("invalid-query"))
    );
}

#[tokio::test]
async fn a_request_waits_while_the_mail_server_is_down_and_is_never_marked_done() {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mailer = Arc::new(
        steward_server::mail::SmtpMailer::new(
            &format!("smtp://127.0.0.1:{closed}"),
            "privacy@mailpro.example",
        )
        .unwrap(),
    );
    let app = spawn_full(
        declaration("004-mailpro.toml", example_text("004-mailpro.toml")),
        steward_server::ServerConfig::default(),
        mailer,
        tempfile::tempdir().unwrap(),
    )
    .await;
    person(
        &app,
        "fay.orr@example.com",
        "account",
        json!({ "user.name": "Fay Orr" }),
    )
    .await;
    let (_, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "restriction", "email": "fay.orr@example.com", "vouch": true })),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = show(&app, &id).await;
        if shown["jobs"][0]["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown["status"], "executing", "{shown}");
    assert_eq!(shown["jobs"][0]["done"], false);
    assert!(
        shown["jobs"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("mail"),
        "{shown}"
    );
    // It is retried with backoff, still not done.
    app.clock.advance(time::Duration::minutes(5));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = show(&app, &id).await;
    assert_eq!(later["status"], "executing");
    assert!(
        later["jobs"][0]["attempts"].as_u64().unwrap() >= 2,
        "{later}"
    );
}

/// A recipient's HTTPS endpoint on loopback (a certificate for 127.0.0.1 from a test-only CA)
/// that keeps each request it is sent and answers 200.
async fn tls_webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;
    let cert = rustls::pki_types::CertificateDer::from(include_bytes!("tls/hook.der").to_vec());
    let key =
        rustls::pki_types::PrivateKeyDer::Pkcs8(include_bytes!("tls/hook-key.der").to_vec().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://{}/hook?from=steward",
        listener.local_addr().unwrap()
    );
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = Arc::clone(&kept);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            loop {
                let n = tls.read(&mut buf).await.unwrap_or(0);
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            k.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&raw).into_owned());
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    (url, kept)
}

#[tokio::test]
async fn webhooks_go_over_verified_tls_and_never_to_an_untrusted_certificate() {
    use steward_core::requests::Notifier as _;
    use steward_server::requests::HttpNotifier;
    let (url, received) = tls_webhook().await;
    let body = r#"{"event":"request.completed","kind":"erasure"}"#;

    // Trusting the recipient's CA: delivered over TLS, path, query, body and signature intact.
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots
        .add(tokio_rustls::rustls::pki_types::CertificateDer::from(
            include_bytes!("tls/ca.der").to_vec(),
        ))
        .unwrap();
    let trusting = HttpNotifier::with_roots(roots);
    let status = trusting.post(&url, body, "t=1,v1=abc").await.unwrap();
    assert_eq!(status, 200);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("POST /hook?from=steward HTTP/1.1\r\n"),
        "{}",
        got[0]
    );
    let head = got[0].to_lowercase();
    assert!(head.contains("steward-signature: t=1,v1=abc"), "{}", got[0]);
    assert!(
        head.contains("content-type: application/json"),
        "{}",
        got[0]
    );
    assert!(got[0].ends_with(body), "{}", got[0]);

    // The same CA from a PEM bundle, as `serve --webhook-ca FILE` reads it.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("recipients-ca.pem");
    let der = base64::engine::general_purpose::STANDARD.encode(include_bytes!("tls/ca.der"));
    let lines: Vec<&str> = der
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    std::fs::write(
        &pem,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    let bundled = HttpNotifier::from_ca_file(&pem).unwrap();
    assert_eq!(bundled.post(&url, body, "t=1,v1=abc").await.unwrap(), 200);
    received.lock().unwrap().pop();
    for (text, says) in [
        ("", "holds no certificate"),
        ("not a certificate at all\n", "holds no certificate"),
        (
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "is not PEM",
        ),
    ] {
        std::fs::write(&pem, text).unwrap();
        let refused = HttpNotifier::from_ca_file(&pem).unwrap_err();
        assert!(
            refused.contains(says) && refused.contains("recipients-ca.pem"),
            "{text:?}: {refused}"
        );
    }
    let missing = HttpNotifier::from_ca_file(&dir.path().join("nowhere.pem")).unwrap_err();
    assert!(missing.contains("cannot read"), "{missing}");

    // With the public roots only, the same endpoint's certificate is refused: nothing is sent.
    let public = HttpNotifier::new();
    let error = public.post(&url, body, "t=1,v1=abc").await.unwrap_err();
    assert!(
        error.contains("TLS") && error.contains("certificate"),
        "{error}"
    );
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "nothing went to an untrusted endpoint"
    );

    // By name too: the certificate names localhost.
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let by_name = format!("https://localhost:{port}/hook");
    assert_eq!(trusting.post(&by_name, body, "s").await.unwrap(), 200);
    assert_eq!(received.lock().unwrap().len(), 2);

    // Nothing but http(s); nowhere to connect is an error to retry, not a panic.
    assert!(
        trusting
            .post("ftp://127.0.0.1/x", body, "s")
            .await
            .unwrap_err()
            .contains("https://")
    );
    assert!(
        trusting
            .post("http://127.0.0.1:9/x", body, "s")
            .await
            .unwrap_err()
            .contains("cannot connect")
    );
}
