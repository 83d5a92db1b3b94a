//! Least privilege over HTTP: roles and scopes, purposes and tickets, expiry, rate limits,
//! staff sign-in with sessions, CSRF, lockout and TOTP — and every refusal in the audit.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use steward_core::audit::{AuditFilter, Outcome};
use steward_core::staff::{NewStaff, totp};
use steward_core::store::prelude::*;
use steward_core::{Access, Principal, Role, Scope};

use super::{App, declaration, example, example_text, spawn, spawn_with};

/// One request with any headers; the status, the JSON body and the response headers.
pub(crate) async fn call(
    app: &App,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value, HeaderMap) {
    let mut request = crate::client().request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

pub(crate) fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Seed 004 with one category only its advertising (marketing) purpose collects.
fn mailpro_with_marketing_only_category() -> steward_policy::Declaration {
    let text = example_text("004-mailpro.toml");
    let at = text.find("id = \"advertising\"").unwrap();
    let line = "categories = [\"user.device.cookie_id\", \"user.behavior.browsing_history\"]";
    let offset = at + text[at..].find(line).unwrap();
    let mut changed = text;
    changed.replace_range(
        offset..offset + line.len(),
        "categories = [\"user.device.cookie_id\", \"user.behavior.browsing_history\", \"user.demographic\"]",
    );
    declaration("004-marketing-only.toml", changed)
}

async fn create_person(app: &App, email: &str) -> String {
    let (status, body, _) = call(
        app,
        reqwest::Method::POST,
        "/v1/subjects",
        &[("authorization", &bearer(&app.service))],
        Some(json!({
            "purpose": "account",
            "identities": [{ "kind": "email", "value": email }],
            "fields": { "user.name": "Pat Person", "user.contact.phone_number": "+41 79 555 01 02" }
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn support_never_reads_marketing_only_categories_and_every_read_is_flagged() {
    let app = spawn(mailpro_with_marketing_only_category()).await;
    let id = create_person(&app, "pat@example.com").await;
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &format!("/v1/subjects/{id}/fields"),
        &[("authorization", &bearer(&app.service))],
        Some(json!({ "purpose": "advertising", "category": "user.demographic", "value": "age 30-39" })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let read = |key: &str, purpose: &str, extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![
            ("authorization".to_owned(), bearer(key)),
            ("steward-purpose".to_owned(), purpose.to_owned()),
        ];
        headers.extend(
            extra
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned())),
        );
        let path = format!("/v1/subjects/{id}");
        let app = &app;
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            call(app, reqwest::Method::GET, &path, &h, None).await
        }
    };
    // The data is there: once Pat consents, an admin reading for advertising sees it.
    let (status, body, _) = read(&app.admin, "advertising", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("permit-denied")),
        "not before Pat consents: {body}"
    );
    let (status, body, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &[("authorization", &bearer(&app.service))],
        Some(json!({ "subject": id, "action": "grant", "purpose": "advertising", "method": "form", "notice": "2019-02-05" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = read(&app.admin, "advertising", &[]).await;
    assert_eq!(status, 200);
    assert!(body.to_string().contains("age 30-39"));

    // Support may not act for a marketing purpose at all…
    let (status, body, _) = read(&app.support, "advertising", &[("steward-reason", "ZD-1")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("marketing-purpose")),
        "{body}"
    );
    // …sees only its purpose's categories under a service purpose…
    let (status, body, _) = read(&app.support, "support", &[("steward-reason", "ZD-1")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("age 30-39"), "{body}");
    assert!(body.to_string().contains("pat@example.com"));
    // …and cannot ask for the marketing category by name.
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}?categories=user.demographic"),
        &[
            ("authorization", &bearer(&app.support)),
            ("steward-purpose", "support"),
            ("steward-reason", "ZD-1"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("purpose-does-not-cover"))
    );
    // Without a ticket, nothing; a "ticket" that is an address is refused and not echoed.
    let (status, body, _) = read(&app.support, "support", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("ticket-required"))
    );
    let (status, body, _) = read(
        &app.support,
        "support",
        &[("steward-reason", "bob@example.com")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid-reason"))
    );
    assert!(!body.to_string().contains("bob@"));

    let entries = app
        .vault
        .store()
        .audit_search(
            &AuditFilter {
                subject: Some(id.parse().unwrap()),
                ..AuditFilter::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    let support: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.role == "support")
        .collect();
    assert!(
        support.iter().all(|e| e.entry.flagged),
        "support acts are flagged"
    );
    let allowed = support
        .iter()
        .find(|e| e.entry.outcome == Outcome::Ok)
        .unwrap();
    assert_eq!(allowed.entry.ticket.as_deref(), Some("ZD-1"));
    assert!(
        !allowed
            .entry
            .categories
            .contains(&"user.demographic".to_owned())
    );
    let codes: Vec<_> = support
        .iter()
        .filter_map(|e| e.entry.code.as_deref())
        .collect();
    for code in [
        "marketing-purpose",
        "purpose-does-not-cover",
        "ticket-required",
    ] {
        assert!(codes.contains(&code), "{code} audited: {codes:?}");
    }
}

#[tokio::test]
async fn a_service_key_cannot_export_a_dpo_can_and_the_trail_says_who_looked() {
    let app = spawn(example("004-mailpro.toml")).await;
    let id = create_person(&app, "quinn@example.com").await;
    let path = format!("/v1/subjects/{id}/export");
    for (key, code) in [
        (&app.service, 403),
        (&app.support, 403),
        (&app.auditor, 403),
    ] {
        let (status, body, _) = call(
            &app,
            reqwest::Method::GET,
            &path,
            &[("authorization", &bearer(key))],
            None,
        )
        .await;
        assert_eq!(status, code, "{body}");
        assert_eq!(body["error"], "operation-not-allowed");
    }
    call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        &[
            ("authorization", &bearer(&app.service)),
            ("steward-purpose", "newsletter"),
        ],
        None,
    )
    .await;
    let (status, body, headers) = call(
        &app,
        reqwest::Method::GET,
        &path,
        &[("authorization", &bearer(&app.dpo))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("steward-request-id"));
    assert!(body["fields"].as_array().unwrap().len() >= 2);
    let trail = body["trail"].as_array().unwrap();
    let reads: Vec<_> = trail
        .iter()
        .filter(|t| t["action"] == "subject.read")
        .collect();
    assert_eq!(reads.len(), 1, "{trail:?}");
    assert_eq!(reads[0]["purpose"], "newsletter");
    assert_eq!(reads[0]["role"], "service");
    assert!(
        trail
            .iter()
            .any(|t| t["action"] == "subject.export" && t["outcome"] == "denied")
    );
    assert!(
        reads[0].get("actor").is_none(),
        "staff names stay with the operator"
    );
}

#[tokio::test]
async fn purposes_are_required_keys_expire_and_refusals_are_audited() {
    let app = spawn(example("004-mailpro.toml")).await;
    let id = create_person(&app, "rae@example.com").await;
    let path = format!("/v1/subjects/{id}");
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        &path,
        &[("authorization", &bearer(&app.service))],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("missing-purpose"))
    );
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        &path,
        &[
            ("authorization", &bearer(&app.service)),
            ("steward-purpose", "spying"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("unknown-purpose"))
    );

    // A key valid for an hour.
    let now = app.vault.clock().now();
    let key = app
        .vault
        .create_api_key(
            &Access::new(Principal::cli()),
            Role::Service,
            Scope::default(),
            Some(now + time::Duration::HOUR),
            "short-lived",
        )
        .await
        .unwrap();
    let secret = key.secret.to_string();
    let ok = call(
        &app,
        reqwest::Method::GET,
        &path,
        &[
            ("authorization", &bearer(&secret)),
            ("steward-purpose", "account"),
        ],
        None,
    )
    .await;
    assert_eq!(ok.0, 200);
    app.clock.advance(time::Duration::hours(2));
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        &path,
        &[
            ("authorization", &bearer(&secret)),
            ("steward-purpose", "account"),
        ],
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("expired-key")));

    // The auditor reads the audit; the service key may not.
    let (status, _, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/audit",
        &[("authorization", &bearer(&app.service))],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, audit, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/audit?limit=1000",
        &[("authorization", &bearer(&app.auditor))],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    let code_of = |c: &str| {
        entries
            .iter()
            .any(|e| e["code"] == c && e["outcome"] == "denied")
    };
    assert!(code_of("missing-purpose"));
    assert!(code_of("expired-key"));
    assert!(entries.iter().any(|e| e["code"] == "unknown-purpose"));
    assert!(entries.iter().any(|e| e["action"] == "apikey.create"));
    assert!(
        !audit.to_string().contains("rae@example.com"),
        "no address in the audit"
    );
    let (status, verdict, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/audit/verify",
        &[("authorization", &bearer(&app.auditor))],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["intact"], true, "{verdict}");
}

#[tokio::test]
async fn look_ups_are_rate_limited_per_identity_and_per_address() {
    let config = steward_server::ServerConfig {
        rates: steward_server::api::Rates {
            lookup_identity: (3, time::Duration::MINUTE),
            lookup_ip: (6, time::Duration::MINUTE),
            ..steward_server::api::Rates::default()
        },
        ..steward_server::ServerConfig::default()
    };
    let app = spawn_with(example("004-mailpro.toml"), config).await;
    let look = |email: &'static str| {
        let app = &app;
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/subjects/lookup",
                &[("authorization", &bearer(&app.service))],
                Some(json!({ "kind": "email", "value": email })),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(look("sam@example.com").await.0, 404);
    }
    let (status, body, headers) = look("SAM@example.com").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate-limited")),
        "the same person, however written"
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(look("tom@example.com").await.0, 404);
    assert_eq!(look("uma@example.com").await.0, 404);
    // The refused attempt counted for the address too: six per address.
    assert_eq!(look("vic@example.com").await.0, 429, "six per address");
    app.clock.advance(time::Duration::MINUTE);
    assert_eq!(look("sam@example.com").await.0, 404, "the window passes");
    let denied = app
        .vault
        .store()
        .audit_search(&AuditFilter::default(), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.code.as_deref() == Some("rate-limited"))
        .count();
    assert_eq!(denied, 2);
}

fn cookie_of(headers: &HeaderMap) -> String {
    let set = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn staff_sign_in_with_sessions_csrf_and_lockout() {
    let app = spawn(example("004-mailpro.toml")).await;
    let cli = Access::new(Principal::cli());
    app.vault
        .create_staff(
            &cli,
            &NewStaff {
                username: "dana",
                role: Role::Dpo,
                password: "correct horse battery staple",
                totp: false,
            },
        )
        .await
        .unwrap();
    let sign_in = |user: &'static str, password: &'static str| {
        let app = &app;
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/session",
                &[],
                Some(json!({ "username": user, "password": password })),
            )
            .await
        }
    };
    let wrong = sign_in("dana", "wrong password!").await;
    let unknown = sign_in("nobody", "wrong password!").await;
    assert_eq!(wrong.0, 401);
    assert_eq!(
        wrong.1, unknown.1,
        "the same answer whether or not the user exists"
    );

    let (status, body, headers) = sign_in("dana", "correct horse battery staple").await;
    assert_eq!(status, 200, "{body}");
    let cookie = cookie_of(&headers);
    assert!(cookie.starts_with("__Host-steward-session="));
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let (status, me, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/session",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!((status, me["role"].as_str()), (200, Some("dpo")));
    assert_eq!(me["csrf_token"], csrf.as_str());

    let id = create_person(&app, "wes@example.com").await;
    let patch = json!({ "purpose": "account", "category": "user.name", "value": "Wes W." });
    let path = format!("/v1/subjects/{id}/fields");
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &path,
        &[("cookie", &cookie)],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid-csrf"))
    );
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &path,
        &[("cookie", &cookie), ("x-csrf-token", "forged")],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid-csrf"))
    );
    let host = app.address.to_string();
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &path,
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("origin", "https://evil.example"),
            ("host", &host),
        ],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("cross-origin"))
    );
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &path,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(patch),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let forged = "__Host-steward-session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/session",
        &[("cookie", forged)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid-session"))
    );

    // Idle sessions end.
    app.clock.advance(time::Duration::minutes(31));
    let (status, body, _) = call(
        &app,
        reqwest::Method::GET,
        "/v1/session",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("expired-session"))
    );

    // Sign out ends a session at once.
    let (_, body, headers) = sign_in("dana", "correct horse battery staple").await;
    let cookie = cookie_of(&headers);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let (status, _, _) = call(
        &app,
        reqwest::Method::DELETE,
        "/v1/session",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/session",
            &[("cookie", &cookie)],
            None
        )
        .await
        .0,
        401
    );

    // Five failures lock the account, even against the right password, with the same answer.
    for _ in 0..5 {
        assert_eq!(sign_in("dana", "not the password").await.0, 401);
    }
    let locked = sign_in("dana", "correct horse battery staple").await;
    assert_eq!(locked.0, 401);
    assert_eq!(locked.1, unknown.1);
    app.clock.advance(time::Duration::minutes(16));
    assert_eq!(sign_in("dana", "correct horse battery staple").await.0, 200);

    let audit = app
        .vault
        .store()
        .audit_search(&AuditFilter::default(), 0, 1000)
        .await
        .unwrap();
    let sign_ins: Vec<_> = audit
        .iter()
        .filter(|e| e.entry.action == "staff.sign-in")
        .collect();
    let codes: Vec<_> = sign_ins
        .iter()
        .filter_map(|e| e.entry.code.as_deref())
        .collect();
    for code in ["wrong-password", "unknown-user", "locked"] {
        assert!(codes.contains(&code), "{code}: {codes:?}");
    }
    assert!(
        !format!("{audit:?}").contains("nobody"),
        "unknown names are not kept"
    );
    assert!(
        !format!("{audit:?}").contains("horse"),
        "no password in the audit"
    );
}

#[tokio::test]
async fn totp_codes_are_required_and_single_use() {
    let app = spawn(example("004-mailpro.toml")).await;
    let cli = Access::new(Principal::cli());
    let secret = app
        .vault
        .create_staff(
            &cli,
            &NewStaff {
                username: "tess",
                role: Role::Admin,
                password: "another long passphrase",
                totp: true,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let attempt = |code: Option<String>| {
        let app = &app;
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/session",
                &[],
                Some(json!({ "username": "tess", "password": "another long passphrase", "code": code })),
            )
            .await
        }
    };
    assert_eq!(attempt(None).await.0, 401, "the code is required");
    assert_eq!(attempt(Some("000000".into())).await.0, 401);
    let step = app.vault.clock().now().unix_timestamp() / totp::STEP;
    let code = format!("{:06}", totp::code(&secret, step));
    assert_eq!(attempt(Some(code.clone())).await.0, 200);
    assert_eq!(attempt(Some(code)).await.0, 401, "a code works once");
}
