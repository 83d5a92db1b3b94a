//! Consent over HTTP: double opt-in through a real SMTP exchange, one-click unsubscribe, the
//! banner endpoint and signals, policy acceptance, and bad input refused and audited.

use std::sync::{Arc, Mutex};
use steward_core::store::prelude::*;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::{App, declaration, example, example_text, spawn, spawn_full};

/// A real SMTP server on loopback that keeps every message it is given.
pub(crate) struct Sink {
    pub(crate) port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&messages);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    let mut data: Option<String> = None;
                    let mut envelope = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                // The envelope's recipients first, as the sink saw them.
                                let message = format!("{envelope}{}", std::mem::take(body));
                                kept.lock().unwrap().push(message);
                                envelope.clear();
                                data = None;
                                write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                            } else {
                                body.push_str(line.strip_prefix('.').unwrap_or(&line));
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        if verb == "RCPT" {
                            envelope.push_str(&format!("X-Sink-{line}\n"));
                        }
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                                return;
                            }
                            _ => b"502 5.5.2 not implemented\r\n",
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        Self { port, messages }
    }

    pub(crate) fn all(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// Quoted-printable soft line breaks undone, so a link reads whole.
pub(crate) fn unfold(message: &str) -> String {
    message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

pub(crate) fn link_in(message: &str, path: &str) -> String {
    let text = unfold(message);
    let start = text
        .find(&format!("{path}?token="))
        .expect("a link in the mail");
    let begin = text[..start].rfind("http").unwrap();
    text[begin..].split_whitespace().next().unwrap().to_owned()
}

pub(crate) fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

pub(crate) async fn call(
    app: &App,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = crate::client()
        .request(method, app.url(path))
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn subject(app: &App, email: &str) -> String {
    let (status, created) = call(
        app,
        reqwest::Method::POST,
        "/v1/subjects",
        &app.service,
        Some(json!({
            "purpose": "account",
            "identities": [{ "kind": "email", "value": email }],
            "fields": {}
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn permit(app: &App, id: &str, purpose: &str) -> Value {
    let (status, body) = call(
        app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={id}&purpose={purpose}"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn post_form(url: &str, body: &str) -> (u16, String) {
    let response = crate::client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn audit(app: &App) -> Vec<steward_core::audit::SealedEntry> {
    app.store.audit_entries(0, u64::MAX, 10_000).await.unwrap()
}

#[tokio::test]
async fn double_opt_in_mail_arrives_over_smtp_and_only_its_link_confirms() {
    let sink = Sink::start().await;
    let mailer = Arc::new(
        steward_server::mail::SmtpMailer::new(
            &format!("smtp://127.0.0.1:{}", sink.port),
            "Mailpro Privacy <privacy@mailpro.example>",
        )
        .unwrap(),
    );
    let app = spawn_full(
        example("004-mailpro.toml"),
        steward_server::ServerConfig::default(),
        mailer,
        tempfile::tempdir().unwrap(),
    )
    .await;
    let id = subject(&app, "ana.lopez@example.com").await;
    assert_eq!(
        permit(&app, &id, "newsletter").await["reason"],
        "no-consent"
    );

    let (status, recorded) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "subject": id, "action": "grant", "purpose": "newsletter", "method": "form", "notice": "2019-02-05" })),
    )
    .await;
    assert_eq!(status, 201, "{recorded}");
    assert_eq!(recorded["confirmation"], "sent");
    assert_eq!(recorded["permit"]["reason"], "not-confirmed");
    assert_eq!(recorded["permit"]["allowed"], false);

    let mails = sink.all();
    assert_eq!(
        mails.len(),
        1,
        "one confirmation mail reached the SMTP server"
    );
    assert!(
        mails[0].contains("To: ana.lopez@example.com"),
        "{}",
        mails[0]
    );
    let link = link_in(&mails[0], "/consent/confirm");
    assert!(
        link.starts_with(&app.url("/consent/confirm?token=")),
        "{link}"
    );

    // Opening the link (as a mail scanner would) changes nothing: it shows a button.
    let page = crate::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    assert_eq!(
        permit(&app, &id, "newsletter").await["reason"],
        "not-confirmed"
    );

    // Pressing it confirms, once; pressing again says so and writes nothing.
    let token = token_of(&link);
    let (status, page) = post_form(&app.url("/consent/confirm"), &format!("token={token}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Confirmed"));
    assert_eq!(
        permit(&app, &id, "newsletter").await["reason"],
        "consent-given"
    );
    let seq = app.ledger.seq();
    let (status, page) = post_form(&app.url("/consent/confirm"), &format!("token={token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Already confirmed"));
    assert_eq!(app.ledger.seq(), seq, "an idempotent click writes no event");

    // The mailer asks for the unsubscribe headers of a newsletter issue (RFC 8058).
    let (status, headers) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}/unsubscribe?purpose=newsletter"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 200, "{headers}");
    assert_eq!(
        headers["list_unsubscribe_post"],
        "List-Unsubscribe=One-Click"
    );
    let url = headers["url"].as_str().unwrap().to_owned();
    assert_eq!(headers["list_unsubscribe"], format!("<{url}>"));
    assert!(!url.contains("example.com"), "no address in the link");
    // A mail client's one-click POST, as RFC 8058 describes it.
    let (status, page) = post_form(&url, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Unsubscribed"));
    assert_eq!(permit(&app, &id, "newsletter").await["reason"], "withdrawn");
    let (status, page) = post_form(&url, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200);
    assert!(page.contains("Already unsubscribed"));

    // The old confirmation link cannot bring the consent back.
    let (status, page) = post_form(&app.url("/consent/confirm"), &format!("token={token}")).await;
    assert_eq!(status, 409, "{page}");
    assert_eq!(permit(&app, &id, "newsletter").await["reason"], "withdrawn");

    // A new sign-up sends a new link, which expires after 7 days.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "subject": id, "action": "grant", "purpose": "newsletter" })),
    )
    .await;
    assert_eq!(status, 201);
    let second = link_in(&sink.all()[1], "/consent/confirm");
    app.clock.advance(time::Duration::days(8));
    let (status, page) = post_form(
        &app.url("/consent/confirm"),
        &format!("token={}", token_of(&second)),
    )
    .await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("expired"));
    // A forged token.
    let mut forged = token_of(&second);
    forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
    let (status, _) = post_form(&app.url("/consent/confirm"), &format!("token={forged}")).await;
    assert_eq!(status, 403);
    assert_eq!(
        permit(&app, &id, "newsletter").await["reason"],
        "not-confirmed"
    );

    // Every step is in the audit; the mails are logged without address or body.
    let entries = audit(&app).await;
    let codes: Vec<(String, String, Option<String>)> = entries
        .iter()
        .map(|e| {
            (
                e.entry.action.clone(),
                e.entry.outcome.as_str().to_owned(),
                e.entry.code.clone(),
            )
        })
        .collect();
    for want in [
        ("consent.grant", "ok", None),
        ("mail.send", "ok", None),
        ("consent.confirm", "ok", None),
        ("consent.withdraw", "ok", None),
        ("consent.confirm", "denied", Some("replayed-token")),
        ("consent.confirm", "denied", Some("expired-token")),
        ("consent.confirm", "denied", Some("forged-token")),
    ] {
        assert!(
            codes
                .iter()
                .any(|(a, o, c)| a == want.0 && o == want.1 && c.as_deref() == want.2),
            "{want:?} in {codes:?}"
        );
    }
    let dump = format!("{entries:?}");
    assert!(!dump.contains("ana.lopez"), "no address in the audit");

    // The history shows every event; the proof binds them to the ledger's head.
    let (status, history) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}/consent"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let actions: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["grant", "confirm", "withdraw", "grant"]);
    assert_eq!(history["events"][0]["evidence"]["notice"], "2019-02-05");
    assert!(
        history["events"][0]["evidence"]["ip"]
            .as_str()
            .unwrap()
            .len()
            == 24,
        "a keyed hash, not an address"
    );
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}/consent/proof"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(status, 403, "the service key cannot export proofs");
    let (status, proof) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}/consent/proof"),
        &app.auditor,
        None,
    )
    .await;
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["format"], "steward-consent-proof/1");
    assert_eq!(proof["ledger_head"][0], app.ledger.seq());
    let (status, verified) = call(
        &app,
        reqwest::Method::GET,
        "/v1/consent/verify",
        &app.auditor,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(verified["intact"], true, "{verified}");
}

#[tokio::test]
async fn bad_input_is_refused_precisely_audited_and_never_written() {
    let app = spawn(example("004-mailpro.toml")).await;
    let id = subject(&app, "sam@example.com").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "subject": id, "action": "grant", "purpose": "nonsense" }),
            422,
            "unknown-purpose",
        ),
        (
            json!({ "subject": id, "action": "grant", "purpose": "product-emails" }),
            422,
            "not-consent-based",
        ),
        (
            json!({ "subject": id, "action": "object", "purpose": "account" }),
            422,
            "not-objectable",
        ),
        (
            json!({ "subject": id, "action": "grant" }),
            422,
            "invalid-event",
        ),
        (
            json!({ "subject": id, "action": "signal", "purpose": "advertising", "signal": "gpc" }),
            422,
            "invalid-event",
        ),
        // A field of another action is refused, not ignored.
        (
            json!({ "subject": id, "action": "grant", "purpose": "site-statistics", "signal": "gpc" }),
            422,
            "invalid-event",
        ),
        (
            json!({ "subject": id, "action": "restrict", "version": "2019-02-05" }),
            422,
            "invalid-event",
        ),
        (
            json!({ "subject": id, "action": "restrict", "ip": "not an address" }),
            422,
            "invalid-event",
        ),
        (
            json!({ "subject": id, "action": "grant", "purpose": "site-statistics", "notice": "x".repeat(65) }),
            422,
            "evidence-too-large",
        ),
        (
            json!({ "subject": id, "action": "grant", "purpose": "site-statistics", "user_agent": "x".repeat(513) }),
            422,
            "evidence-too-large",
        ),
        (
            json!({ "device": "dv1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "action": "grant", "purpose": "site-statistics" }),
            403,
            "forged-token",
        ),
        (
            json!({ "device": "someone-elses-id", "action": "grant", "purpose": "site-statistics" }),
            400,
            "malformed-token",
        ),
        (
            json!({ "subject": "01234567-89ab-7def-8123-456789abcdef", "action": "grant", "purpose": "site-statistics" }),
            404,
            "not-found",
        ),
        (
            json!({ "subject": id, "action": "accept", "version": "99" }),
            422,
            "unknown-version",
        ),
        (
            json!({ "subject": id, "action": "grant", "purpose": "newsletter", "extra": 1 }),
            400,
            "invalid-body",
        ),
    ];
    let before = app.ledger.seq();
    for (body, status, code) in cases {
        let (got, answer) = call(
            &app,
            reqwest::Method::POST,
            "/v1/consent",
            &app.service,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (got, answer["error"].as_str().unwrap_or("")),
            (status, code),
            "{body} → {answer}"
        );
    }
    assert_eq!(
        app.ledger.seq(),
        before,
        "no refused event reached the ledger"
    );
    // Each refusal is in the audit.
    let denied = audit(&app)
        .await
        .into_iter()
        .filter(|e| e.entry.action.starts_with("consent.") && e.entry.outcome.as_str() == "denied")
        .count();
    assert_eq!(denied, 15);
    // An auditor cannot record consent; a permit for an unknown purpose is refused.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.auditor,
        Some(json!({ "subject": id, "action": "grant", "purpose": "site-statistics" })),
    )
    .await;
    assert_eq!(status, 403);
    let (status, answer) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={id}&purpose=nope"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (422, "unknown-purpose")
    );
    // A batch answers in order, and refuses more than 1,000 questions.
    let (status, answer) = call(
        &app,
        reqwest::Method::POST,
        "/v1/permits",
        &app.service,
        Some(json!({ "questions": [
        { "subject": id, "purpose": "account" },
        { "subject": id, "purpose": "newsletter" },
        { "subject": id, "purpose": "product-emails" },
    ] })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let reasons: Vec<&str> = answer["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["allowed-by-basis", "no-consent", "allowed-by-basis"]
    );
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({ "subject": id, "purpose": "account" }))
        .collect();
    let (status, answer) = call(
        &app,
        reqwest::Method::POST,
        "/v1/permits",
        &app.service,
        Some(json!({ "questions": many })),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (422, "batch-too-large")
    );
}

async fn choices(app: &App, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut r = crate::client()
        .post(app.url("/consent/choices"))
        .header("content-type", "text/plain")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let response = r.send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_banner_endpoint_issues_device_ids_records_choices_and_honours_signals_once() {
    let app = spawn(example("004-mailpro.toml")).await;
    let script = crate::get(app.url("/consent.js")).await.unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let script = script.text().await.unwrap();
    assert!(
        script.len() < 15 * 1024,
        "consent.js is {} bytes",
        script.len()
    );
    assert!(script.contains("\"site-statistics\"") && script.contains("\"advertising\""));
    assert!(
        !script.contains("\"newsletter\""),
        "e-mail consent is not a banner choice"
    );
    let gpc: Value = crate::get(app.url("/.well-known/gpc.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gpc["gpc"], true);

    let (status, first) = choices(
        &app,
        json!({ "revision": "2019-02-05", "choices": { "site-statistics": true, "advertising": true } }),
        &[("sec-gpc", "1")],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let device = first["device"].as_str().unwrap().to_owned();
    assert!(device.starts_with("dv1."));
    assert_eq!(
        first["permits"]["site-statistics"]["reason"],
        "consent-given"
    );
    assert_eq!(first["permits"]["advertising"]["reason"], "gpc-opt-out");
    let seq = app.ledger.seq();
    // The same choices and the same signal again: nothing new to record.
    let (status, _) = choices(
        &app,
        json!({ "device": device, "revision": "2019-02-05", "choices": { "site-statistics": true, "advertising": true } }),
        &[("sec-gpc", "1")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.ledger.seq(), seq);
    // A later visit without the signal is not an opt-in.
    let (_, later) = choices(
        &app,
        json!({ "device": device, "revision": "2019-02-05", "choices": { "advertising": true } }),
        &[],
    )
    .await;
    assert_eq!(later["permits"]["advertising"]["reason"], "gpc-opt-out");
    // DNT, declared honoured by Mailpro, stops statistics.
    let (_, dnt) = choices(&app, json!({ "device": device, "revision": "2019-02-05", "choices": { "site-statistics": true }, "dnt": true }), &[]).await;
    assert_eq!(dnt["permits"]["site-statistics"]["reason"], "dnt");
    // A device id from elsewhere, an unknown purpose and a body that is not ours are refused.
    let (status, answer) = choices(
        &app,
        json!({ "device": "dv1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "revision": "x" }),
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (403, "forged-token")
    );
    let (status, answer) = choices(
        &app,
        json!({ "device": device, "revision": "x", "choices": { "mind-reading": true } }),
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (422, "unknown-purpose")
    );
    let (status, answer) = choices(&app, json!({ "hello": "world" }), &[]).await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (400, "invalid-body")
    );

    // The operator links the browser to the person who signs in: GPC follows them.
    let id = subject(&app, "lee@example.com").await;
    let (status, linked) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "device": device, "action": "link", "link": id })),
    )
    .await;
    assert_eq!(status, 201, "{linked}");
    let (status, answer) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/permits?device={device}&purpose=advertising"),
        &app.service,
        None,
    )
    .await;
    assert_eq!(
        (status, answer["reason"].as_str().unwrap()),
        (200, "gpc-opt-out")
    );
    assert_eq!(
        permit(&app, &id, "advertising").await["reason"],
        "gpc-opt-out"
    );
    let (_, history) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}/consent"),
        &app.service,
        None,
    )
    .await;
    let signals = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "signal")
        .count();
    assert_eq!(
        signals, 2,
        "the linked browser's GPC and DNT are in the person's history: {history}"
    );
}

#[tokio::test]
async fn a_must_accept_policy_version_queues_a_notice_and_acceptance_restores_the_service() {
    // Version 1 of Mailpro's declaration, then a version 2 that must be accepted.
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let first = declaration("004-mailpro.toml", example_text("004-mailpro.toml"));
    let store = steward_store::SqliteStore::open(dir.path()).await.unwrap();
    let master = steward_crypto::MasterKey::generate().unwrap();
    let clock = steward_core::ManualClock::new(time::macros::datetime!(2026-11-22 10:00 UTC));
    let open = |d: steward_policy::Declaration| {
        let store = store.clone();
        let master = master.clone();
        let clock = clock.clone();
        let outbox = outbox.clone();
        async move {
            let vault = Arc::new(
                steward_core::Vault::open(store, &master, Arc::new(d), Arc::new(clock))
                    .await
                    .unwrap(),
            );
            steward_core::ledger::Ledger::open(
                vault,
                Arc::new(
                    steward_server::mail::OutboxMailer::new(outbox, "privacy@mailpro.example")
                        .unwrap(),
                ),
                steward_core::ledger::LedgerOptions {
                    public_url: "https://privacy.mailpro.example".into(),
                    unsubscribe_mailto: None,
                },
                |_| {},
            )
            .await
        }
    };
    let ledger = open(first.clone()).await.unwrap();
    let access = steward_core::Access::new(steward_core::Principal::cli());
    let created = ledger
        .vault()
        .create(
            &access,
            &steward_core::NewSubjectInput {
                purpose: "account".into(),
                identities: vec![
                    steward_core::Identity::parse(
                        steward_core::IdentityKind::Email,
                        "kim@example.com",
                    )
                    .unwrap(),
                ],
                fields: Vec::new(),
                source: steward_core::FieldSource::Form,
            },
        )
        .await
        .unwrap();
    let person = steward_core::consent::Party::Subject(created);
    assert_eq!(
        ledger.permit(&person, "account").unwrap().reason.code(),
        "allowed-by-basis"
    );
    drop(ledger);

    let bumped = example_text("004-mailpro.toml").replacen(
        "[policy]\n",
        "[policy]\nmust_accept = true\n",
        1,
    );
    let bumped = bumped.replacen("version = \"2019-02-05\"", "version = \"2026-12-01\"", 1);
    // Changing a purpose's terms without raising the version is refused.
    let sneaky = example_text("004-mailpro.toml").replacen(
        "recipients = [\"google\", \"adroll\"]",
        "recipients = [\"google\"]",
        1,
    );
    let refused = open(declaration("004-mailpro.toml", sneaky))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "terms-changed-without-version", "{refused}");

    let ledger = open(declaration("004-mailpro.toml", bumped)).await.unwrap();
    assert_eq!(
        ledger.permit(&person, "account").unwrap().reason.code(),
        "policy-not-accepted"
    );
    assert_eq!(ledger.send_policy_notices(100).await.unwrap(), 1);
    assert_eq!(
        ledger.send_policy_notices(100).await.unwrap(),
        0,
        "each notice goes once"
    );
    let mail: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(mail.len(), 1);
    let text = std::fs::read_to_string(&mail[0]).unwrap();
    assert!(text.contains("To: kim@example.com"));
    let link = link_in(&text, "/consent/accept");
    assert!(link.starts_with("https://privacy.mailpro.example/consent/accept?token="));
    let evidence = steward_core::consent::Evidence::default();
    assert_eq!(
        ledger
            .accept(&token_of(&link), evidence.clone())
            .await
            .unwrap(),
        steward_core::ledger::LinkOutcome::Done
    );
    assert_eq!(
        ledger.permit(&person, "account").unwrap().reason.code(),
        "allowed-by-basis"
    );
    assert_eq!(
        ledger.accept(&token_of(&link), evidence).await.unwrap(),
        steward_core::ledger::LinkOutcome::AlreadyDone
    );
    assert_eq!(ledger.versions().len(), 2);
    assert!(ledger.verify(|_| {}).await.unwrap() >= 1);
}

#[tokio::test]
async fn an_oversized_banner_body_is_refused_unread_and_audited() {
    let app = spawn(example("004-mailpro.toml")).await;
    let seq = app.ledger.seq();
    // 1 MiB of choices: refused after at most 16 KiB + 1 byte was read.
    let padding = "x".repeat(1024 * 1024);
    let (status, refused) = choices(
        &app,
        json!({ "revision": "2019-02-05", "choices": { "site-statistics": true }, "padding": padding }),
        &[],
    )
    .await;
    assert_eq!(status, 413, "{refused}");
    assert_eq!(refused["error"], "evidence-too-large", "{refused}");
    assert_eq!(app.ledger.seq(), seq, "nothing recorded");
    let denied = audit(&app)
        .await
        .into_iter()
        .filter(|e| {
            e.entry.action == "consent.choices"
                && e.entry.code.as_deref() == Some("evidence-too-large")
        })
        .count();
    assert_eq!(denied, 1, "the refusal is audited");
    // Just under the limit is read and judged on its content.
    let (status, _) = choices(
        &app,
        json!({ "revision": "2019-02-05", "choices": { "site-statistics": true }, "padding": "x".repeat(15 * 1024) }),
        &[],
    )
    .await;
    assert_ne!(status, 413);
}
