//! Trust boundaries over HTTP: a request made on someone's behalf never does more than its
//! maker may do directly, no answer tells a caller who may not look people up whether a person
//! is known, and public intake costs the same for known and unknown people.

use std::time::{Duration, Instant};
use steward_core::store::prelude::*;

use serde_json::{Value, json};
use steward_core::{Operation, Role, Scope, SubjectId};

use super::access::{bearer, call};
use super::{App, example, spawn, spawn_with};

async fn create(app: &App, email: &str, purpose: &str, fields: Value) -> String {
    let (status, body, _) = call(
        app,
        reqwest::Method::POST,
        "/v1/subjects",
        &[("authorization", &bearer(&app.admin))],
        Some(json!({
            "purpose": purpose,
            "identities": [{ "kind": "email", "value": email }],
            "fields": fields,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn vouch(app: &App, key: &str, ticket: Option<&str>, body: Value) -> (u16, Value) {
    let auth = bearer(key);
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(t) = ticket {
        headers.push(("steward-reason", t));
    }
    let (status, body, _) = call(
        app,
        reqwest::Method::POST,
        "/v1/requests",
        &headers,
        Some(body),
    )
    .await;
    (status, body)
}

async fn still_held(app: &App, subject: &str) -> bool {
    app.store
        .load_subject(SubjectId(subject.parse().unwrap()))
        .await
        .unwrap()
        .is_some()
}

fn newsletter_only() -> Scope {
    Scope {
        purposes: vec!["newsletter".into()],
        ..Scope::default()
    }
}

#[tokio::test]
async fn a_request_made_on_someones_behalf_never_does_more_than_its_key_may() {
    let app = spawn(example("004-mailpro.toml")).await;
    let scoped = app.key(Role::Service, newsletter_only()).await;
    let mut people = Vec::new();
    for n in 0..4 {
        people.push(create(&app, &format!("p{n}@example.com"), "account", json!({})).await);
    }
    // Each key is refused the direct erasure…
    for key in [&app.support, &app.service, &scoped] {
        let (status, body, _) = call(
            &app,
            reqwest::Method::DELETE,
            &format!("/v1/subjects/{}", people[0]),
            &[("authorization", &bearer(key))],
            None,
        )
        .await;
        assert_eq!(status, 403, "{body}");
    }
    // …and support names its ticket when it speaks for someone, as for every personal act.
    let (status, body) = vouch(
        &app,
        &app.support,
        None,
        json!({ "kind": "erasure", "email": "p0@example.com", "vouch": true }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ticket-required"))
    );
    // Vouched erasures by the same keys wait for a role that may erase; nobody is erased.
    let mut waiting = Vec::new();
    for (n, (key, ticket)) in [
        (&app.support, Some("ZD-4821")),
        (&app.service, None),
        (&scoped, None),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = vouch(
            &app,
            key,
            ticket,
            json!({ "kind": "erasure", "email": format!("p{n}@example.com"), "vouch": true }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "awaiting-approval", "{body}");
        assert!(
            body["verification"]["approval_needed"]
                .as_str()
                .unwrap()
                .contains("may not do this directly"),
            "{body}"
        );
        waiting.push(body["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for subject in &people[..3] {
        assert!(still_held(&app, subject).await, "erased without approval");
    }

    // The newsletter key may not set an address directly, nor through a vouched rectification.
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &format!("/v1/subjects/{}/fields", people[3]),
        &[("authorization", &bearer(&scoped))],
        Some(json!({ "purpose": "account", "category": "user.contact.address", "value": "Rue 1" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = vouch(
        &app,
        &scoped,
        None,
        json!({ "kind": "rectification", "email": "p3@example.com", "vouch": true,
                "changes": { "user.contact.address": "Rue 1" } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "awaiting-approval", "{body}");
    // Inside its scope it may: the newsletter key withdraws newsletter consent at once.
    let (status, body) = vouch(
        &app,
        &scoped,
        None,
        json!({ "kind": "withdraw-consent", "email": "p3@example.com", "purpose": "newsletter", "vouch": true }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["status"], "awaiting-approval", "{body}");

    // Approval needs a role that may do the act itself: a DPO narrowed to the newsletter
    // cannot approve an erasure of everything; an unnarrowed DPO can.
    let narrow_dpo = app.key(Role::Dpo, newsletter_only()).await;
    let (status, body, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{}/approve", waiting[1]),
        &[("authorization", &bearer(&narrow_dpo))],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("scope-too-narrow")),
        "{body}"
    );
    assert!(still_held(&app, &people[1]).await);
    // Nor deny it, nor extend it: deciding on a request needs what carrying it out needs.
    for decision in ["deny", "extend"] {
        let (status, body, _) = call(
            &app,
            reqwest::Method::POST,
            &format!("/v1/requests/{}/{decision}", waiting[1]),
            &[("authorization", &bearer(&narrow_dpo))],
            Some(json!({ "reason": "Not today." })),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("scope-too-narrow")),
            "{decision}: {body}"
        );
    }
    let (status, body, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/requests/{}/approve", waiting[1]),
        &[("authorization", &bearer(&app.dpo))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !still_held(&app, &people[1]).await,
        "approved erasure carried out"
    );
    // The audit names who did each step, with their own role: the keys that vouched, the DPO
    // who approved and erased — never a borrowed admin.
    let entries = app.store.audit_entries(0, u64::MAX, 100_000).await.unwrap();
    let waited = entries
        .iter()
        .filter(|e| e.entry.action == "request.awaiting-approval")
        .map(|e| e.entry.role.as_str())
        .collect::<Vec<_>>();
    assert_eq!(waited, ["support", "service", "service", "service"]);
    let erased = entries
        .iter()
        .find(|e| {
            e.entry.action == "subject.erase" && e.entry.outcome == steward_core::audit::Outcome::Ok
        })
        .unwrap();
    assert_eq!(erased.entry.role, "dpo");
    assert!(erased.entry.actor.starts_with("key:stw_"));
    assert!(
        !entries
            .iter()
            .any(|e| e.entry.role == "admin" && e.entry.action.starts_with("request.")),
        "no request step is recorded as admin"
    );
}

#[tokio::test]
async fn the_request_api_never_tells_a_caller_who_may_not_look_people_up_who_is_known() {
    let app = spawn(example("004-mailpro.toml")).await;
    let subject = create(&app, "known@example.com", "account", json!({})).await;
    let intake_only = app
        .key(
            Role::Service,
            Scope {
                operations: vec![Operation::Request],
                ..Scope::default()
            },
        )
        .await;
    // The key may not look people up…
    let (status, _, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/subjects/lookup",
        &[("authorization", &bearer(&intake_only))],
        Some(json!({ "kind": "email", "value": "known@example.com" })),
    )
    .await;
    assert_eq!(status, 403);
    // …so its requests' answers are the same for a known and an unknown address.
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        for body in [
            json!({ "kind": "access", "email": email }),
            json!({ "kind": "opt-out-sale-share", "email": email }),
        ] {
            let (status, mut answer) = vouch(&app, &intake_only, None, body).await;
            assert_eq!(status, 201, "{answer}");
            for volatile in ["id", "received_at", "due_at", "updated_at"] {
                answer[volatile] = Value::Null;
            }
            for step in answer["history"].as_array_mut().unwrap() {
                step["at"] = Value::Null;
            }
            answer["due_original"] = Value::Null;
            answer["verification"]["expires_at"] = Value::Null;
            answer["verification"]["verified_at"] = Value::Null;
            assert!(answer.get("subject").is_none_or(Value::is_null), "{answer}");
            answers.push(answer);
        }
    }
    assert_eq!(answers[0], answers[2], "access: known and unknown alike");
    assert_eq!(answers[1], answers[3], "opt-out: known and unknown alike");

    // A key that may look people up learns the subject, and that is a look-up in the audit.
    let (status, answer) = vouch(
        &app,
        &app.service,
        None,
        json!({ "kind": "access", "email": "known@example.com" }),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["subject"], subject.as_str());
    let entries = app.store.audit_entries(0, u64::MAX, 10_000).await.unwrap();
    assert!(entries.iter().any(|e| e.entry.action == "subject.lookup"
        && e.entry.subject.map(|s| s.to_string()) == Some(subject.clone())));
    // Listing and showing requests hide the subject from such a key, too.
    let decide_only = app
        .key(
            Role::Dpo,
            Scope {
                operations: vec![Operation::Decide],
                ..Scope::default()
            },
        )
        .await;
    let (status, list, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/requests",
        &[("authorization", &bearer(&decide_only))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    for r in list["requests"].as_array().unwrap() {
        assert!(r.get("subject").is_none_or(Value::is_null), "{r}");
        assert!(r.get("outcome").is_none(), "{r}");
    }
    // An account closure by a key that may close accounts but not look people up: the same
    // status, history and (no) queued work for a known and an unknown person.
    let closer = app
        .key(
            Role::Dpo,
            Scope {
                operations: vec![Operation::Request, Operation::Decide, Operation::Erase],
                ..Scope::default()
            },
        )
        .await;
    create(&app, "closing@example.com", "account", json!({})).await;
    let mut shown = Vec::new();
    for email in ["closing@example.com", "nobody-closing@example.com"] {
        let (status, made) = vouch(
            &app,
            &closer,
            None,
            json!({ "kind": "erasure", "email": email, "close_account": true, "vouch": true }),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        let id = made["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, mut view, _) = call(
            &app,
            reqwest::Method::GET,
            &format!("/v1/requests/{id}"),
            &[("authorization", &bearer(&closer))],
            None,
        )
        .await;
        assert_eq!(status, 200, "{view}");
        for volatile in ["id", "received_at", "due_at", "updated_at", "due_original"] {
            view[volatile] = Value::Null;
        }
        for step in view["history"].as_array_mut().unwrap() {
            step["at"] = Value::Null;
        }
        view["verification"]["verified_at"] = Value::Null;
        shown.push(view);
    }
    assert_eq!(shown[0]["status"], "executing", "{}", shown[0]);
    assert_eq!(shown[0], shown[1], "closure: known and unknown alike");
}

/// Median of `samples`, in microseconds.
fn median(mut samples: Vec<u128>) -> u128 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[tokio::test]
#[allow(clippy::disallowed_methods)] // measures the server's answer time, as a person would
async fn public_intake_costs_the_same_for_known_and_unknown_people() {
    let config = steward_server::ServerConfig {
        rates: steward_server::api::Rates {
            request_ip: (100_000, time::Duration::MINUTE),
            request_identity: (100_000, time::Duration::MINUTE),
            ..steward_server::api::Rates::default()
        },
        ..steward_server::ServerConfig::default()
    };
    let app = spawn_with(example("004-mailpro.toml"), config).await;
    for n in 0..40 {
        create(&app, &format!("k{n}@example.com"), "account", json!({})).await;
    }
    let client = crate::client();
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, 40 of each, so the machine's load falls on both alike.
    for n in 0..40 {
        for (email, samples) in [
            (format!("k{n}@example.com"), &mut known),
            (format!("u{n}@example.com"), &mut unknown),
        ] {
            let started = Instant::now();
            let r = client
                .post(app.url("/requests"))
                .json(&json!({ "kind": "opt-out-sale-share", "email": email }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            samples.push(started.elapsed().as_micros());
            assert_eq!(status, 202, "{body}");
        }
    }
    let (k, u) = (median(known), median(unknown));
    // The opt-out used to be written while a known person waited: 2.4 times as long.
    assert!(
        k * 10 < u * 15 && u * 10 < k * 15,
        "median {k} µs for known people, {u} µs for unknown"
    );
    // The work is done all the same, by the job queue.
    for _ in 0..100 {
        let entries = app.store.audit_entries(0, u64::MAX, 100_000).await.unwrap();
        let opted = entries
            .iter()
            .filter(|e| {
                e.entry.action.starts_with("consent.")
                    && e.entry.outcome == steward_core::audit::Outcome::Ok
            })
            .count();
        if opted >= 40 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the queued opt-outs were not carried out");
}

fn tight_connections(max: usize) -> steward_server::ServerConfig {
    steward_server::ServerConfig {
        connections: steward_server::Connections {
            max,
            header_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
        },
        ..steward_server::ServerConfig::default()
    }
}

/// Whether the server closed `stream`: a read ends (EOF or reset) within `within`.
async fn closed(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_connection_that_says_nothing_or_says_it_a_byte_at_a_time_is_closed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(example("004-mailpro.toml"), tight_connections(64)).await;
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(tokio::net::TcpStream::connect(app.address).await.unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        stream.write_all(b"G").await.unwrap();
        slow.push(stream);
    }
    // The slow ones keep sending, a byte every 200 ms, for as long as the server listens.
    let head = b"ET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed_slow = 0;
    for byte in head.iter().take(12) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for s in &mut slow {
            let _ = s.write_all(&[*byte]).await;
        }
    }
    for s in &mut slow {
        if closed(s, Duration::from_secs(3)).await {
            closed_slow += 1;
        }
    }
    let mut closed_silent = 0;
    for s in &mut silent {
        if closed(s, Duration::from_secs(3)).await {
            closed_silent += 1;
        }
    }
    assert_eq!((closed_silent, closed_slow), (10, 10));
    // A kept-alive connection that asks nothing more is closed too.
    let mut kept = tokio::net::TcpStream::connect(app.address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed(&mut kept, Duration::from_secs(4)).await);
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(example("004-mailpro.toml"), tight_connections(64)).await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"POST /requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    // A byte every 200 ms: each arrives long before any per-chunk timeout would fire.
    let mut answer = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await
        {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.len() > 12 {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "still reading after 8 s, or answered otherwise: {text:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_their_turn() {
    let app = spawn_with(example("004-mailpro.toml"), tight_connections(2)).await;
    let _held = [
        tokio::net::TcpStream::connect(app.address).await.unwrap(),
        tokio::net::TcpStream::connect(app.address).await.unwrap(),
    ];
    let url = app.url("/healthz");
    let waiting = tokio::spawn(async move { crate::get(url).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served beyond the cap");
    // The two silent connections time out, and the third is served.
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_oversized_body_is_413_and_every_answer_is_never_sniffed() {
    let app = spawn(example("004-mailpro.toml")).await;
    let big = format!(
        "{{\"purpose\":\"account\",\"identities\":[],\"fields\":{{\"user.name\":\"{}\"}}}}",
        "a".repeat(10 * 1024 * 1024)
    );
    let r = crate::client()
        .post(app.url("/v1/subjects"))
        .header("authorization", bearer(&app.admin))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "body-too-large", "{body}");
    // Sign-in too, like every JSON endpoint.
    let r = crate::client()
        .post(app.url("/v1/session"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"username\":\"{}\"}}",
            "a".repeat(3 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = crate::client()
        .post(app.url("/v1/session"))
        .body("username=a&password=b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Support names its ticket to ask about a person's permits, as for every personal act.
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/permits?subject=01a20000-0000-7000-8000-000000000000&purpose=account",
        &[("authorization", &bearer(&app.support))],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ticket-required"))
    );
    // Link pages, JSON answers, errors and the notice alike.
    for path in [
        "/requests/verify?token=x",
        "/consent/confirm?token=x",
        "/healthz",
        "/v1/subjects/lookup",
        "/privacy",
        "/nowhere",
    ] {
        let r = crate::get(app.url(path)).await.unwrap();
        assert_eq!(
            r.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn everything_in_the_data_folder_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn(example("004-mailpro.toml")).await;
    // A request whose verification mail (a live link) lands in the outbox.
    let r = crate::client()
        .post(app.url("/requests"))
        .json(&json!({ "kind": "access", "email": "ana@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let outbox = app.data_dir().join("outbox");
    for _ in 0..100 {
        if std::fs::read_dir(&outbox).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen = Vec::new();
    let mut stack = vec![app.data_dir().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode, 0o600, "{}", path.display());
                seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for expected in ["steward.db", "keys.db", "steward.db-wal"] {
        assert!(seen.iter().any(|s| s == expected), "{seen:?}");
    }
    assert!(seen.iter().any(|s| s.ends_with(".eml")), "{seen:?}");
}

#[tokio::test]
async fn a_flood_of_made_up_keys_is_summarised_not_written_row_by_row() {
    let config = steward_server::ServerConfig {
        rates: steward_server::api::Rates {
            auth_failure_ip: (3, time::Duration::DAY),
            ..steward_server::api::Rates::default()
        },
        ..steward_server::ServerConfig::default()
    };
    let app = spawn_with(example("004-mailpro.toml"), config).await;
    let before = app
        .store
        .audit_entries(0, u64::MAX, 100_000)
        .await
        .unwrap()
        .len();
    let client = crate::client();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let r = client
            .get(app.url("/v1/requests"))
            .bearer_auth("stw_deadbeef_0000000000000000000000000000000000000000000")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 97);
    // A real key still works from the same address.
    let (status, _, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/requests",
        &[("authorization", &bearer(&app.dpo))],
        None,
    )
    .await;
    assert_eq!(status, 200);
    steward_server::summarise_limits(&app.vault).await.unwrap();
    let entries = app.store.audit_entries(0, u64::MAX, 100_000).await.unwrap();
    let added = &entries[before..];
    let auth = added.iter().filter(|e| e.entry.action == "auth").count();
    assert_eq!(auth, 4, "3 refusals and the first 429, not 100 rows");
    // The server's own minute summary may have run during the flood too: together, the
    // summaries count every refusal not written on its own.
    let summarised: u64 = added
        .iter()
        .filter(|e| e.entry.action == "rate-limit.summary")
        .map(|e| {
            let detail = e.entry.detail.as_deref().unwrap_or_default();
            assert!(
                detail.ends_with("more refusals past a rate limit, not recorded one by one"),
                "{detail}"
            );
            detail.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(summarised, 96);
}
