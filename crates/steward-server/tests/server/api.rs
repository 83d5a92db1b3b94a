//! The vault's API over HTTP: keys and roles, the subject lifecycle, errors without personal
//! data, and the OpenAPI document (checked in, and every operation really routed).

use serde_json::{Value, json};
use steward_core::store::prelude::*;

use super::{App, example, spawn};

fn client() -> reqwest::Client {
    crate::client()
}

async fn send(
    app: &App,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    purpose: Option<&str>,
) -> (u16, Value) {
    let mut request = client().request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(purpose) = purpose {
        request = request.header("Steward-Purpose", purpose);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn new_subject() -> Value {
    json!({
        "purpose": "account",
        "identities": [{ "kind": "email", "value": "Ana.Lopez@Example.com" }],
        "fields": { "user.name": "Ana López", "user.contact.phone_number": "+41 79 555 01 02" }
    })
}

#[tokio::test]
async fn a_subject_is_created_found_read_corrected_and_erased_over_http() {
    let app = spawn(example("004-mailpro.toml")).await;
    let (status, created) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        Some(&app.service),
        Some(new_subject()),
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, found) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects/lookup",
        Some(&app.service),
        Some(json!({ "kind": "email", "value": " ana.lopez@EXAMPLE.com" })),
        None,
    )
    .await;
    assert_eq!((status, found["id"].as_str()), (200, Some(id.as_str())));

    let (status, view) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        Some(&app.service),
        None,
        Some("account"),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["value"] == "Ana López")
    );
    let (status, narrow) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        Some(&app.service),
        None,
        Some("invoicing"),
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    let categories: Vec<&str> = narrow["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        ["user.name"],
        "invoicing (compatible with the account) sees the name, never the phone number: {narrow}"
    );
    let (status, refused) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        Some(&app.service),
        None,
        Some("newsletter"),
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("permit-denied")),
        "the newsletter reads nothing before the person consents: {refused}"
    );
    let (status, missing) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        Some(&app.service),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (400, Some("missing-purpose"))
    );

    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/v1/subjects/{id}/fields"),
        Some(&app.service),
        Some(json!({ "purpose": "account", "category": "user.name", "value": "Ana López García" })),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let (status, denied) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/subjects/{id}"),
        Some(&app.service),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, denied["error"].as_str()),
        (403, Some("operation-not-allowed")),
        "a service key cannot erase"
    );
    let (status, receipt) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/subjects/{id}"),
        Some(&app.admin),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["subject"], id.as_str());
    assert!(
        !receipt.to_string().contains("Ana"),
        "no personal data in the receipt"
    );
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects/lookup",
        Some(&app.service),
        Some(json!({ "kind": "email", "value": "ana.lopez@example.com" })),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn keys_are_required_checked_and_revoked_at_once() {
    let app = spawn(example("004-mailpro.toml")).await;
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        None,
        Some(new_subject()),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("steward apikey create")
    );
    let forged = format!("{}x", app.service);
    assert_eq!(
        send(
            &app,
            reqwest::Method::POST,
            "/v1/subjects",
            Some(&forged),
            Some(new_subject()),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        send(
            &app,
            reqwest::Method::POST,
            "/v1/subjects",
            Some("stw_nothex!_abc"),
            Some(new_subject()),
            None
        )
        .await
        .0,
        401
    );
    let prefix = &app.service[..12];
    assert!(
        app.store
            .revoke_api_key(prefix, time::macros::datetime!(2026-11-22 11:00 UTC))
            .await
            .unwrap()
    );
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        Some(&app.service),
        Some(new_subject()),
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("revoked-key")));
}

#[tokio::test]
async fn refusals_say_why_and_never_echo_personal_data() {
    let app = spawn(example("004-mailpro.toml")).await;
    let secret = "Zebulon.Secret@example.com";
    let cases = [
        (
            json!({ "purpose": "account", "identities": [{ "kind": "email", "value": "Zebulon.Secret at example" }] }),
            422,
            "invalid-identity",
        ),
        (
            json!({ "purpose": "account", "identities": secret }),
            400,
            "invalid-body",
        ),
        (
            json!({ "purpose": "nope", "identities": [{ "kind": "email", "value": secret }] }),
            422,
            "unknown-purpose",
        ),
        (
            json!({ "purpose": "newsletter", "identities": [{ "kind": "email", "value": secret }], "fields": { "user.financial": "Zebulon IBAN" } }),
            422,
            "purpose-may-not-collect",
        ),
        (
            json!({ "purpose": "card-payments", "identities": [{ "kind": "email", "value": secret }] }),
            422,
            "purpose-may-not-collect",
        ),
    ];
    for (body, status, code) in cases {
        let (got, reply) = send(
            &app,
            reqwest::Method::POST,
            "/v1/subjects",
            Some(&app.service),
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(
            (got, reply["error"].as_str()),
            (status, Some(code)),
            "{body} → {reply}"
        );
        assert!(!reply.to_string().contains("Zebulon"), "{reply}");
    }
    send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        Some(&app.service),
        Some(json!({ "purpose": "account", "identities": [{ "kind": "email", "value": secret }] })),
        None,
    )
    .await;
    let (status, reply) = send(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        Some(&app.service),
        Some(json!({ "purpose": "account", "identities": [{ "kind": "email", "value": secret }] })),
        None,
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("duplicate-identity"))
    );
    assert!(!reply.to_string().contains("Zebulon"));
    let (status, reply) = send(
        &app,
        reqwest::Method::GET,
        "/v1/subjects/not-a-uuid",
        Some(&app.service),
        None,
        Some("account"),
    )
    .await;
    assert_eq!((status, reply["error"].as_str()), (400, Some("invalid-id")));
}

#[tokio::test]
async fn openapi_json_in_the_repository_matches_the_served_document() {
    let app = spawn(example("003-allcot.toml")).await;
    let served: Value = crate::get(app.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The server describes the API in the declaration's own words; the repository keeps the
    // generic description.
    let declaration = example("003-allcot.toml");
    assert_eq!(
        served,
        steward_server::openapi::document(Some(&declaration))
    );
    assert_ne!(served, steward_server::openapi::document(None));
    assert!(
        served.to_string().contains("\"enum\":[\"accounts\""),
        "the declared purposes are listed"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    let generic = steward_server::openapi::document(None);
    let pretty = serde_json::to_string_pretty(&generic).unwrap() + "\n";
    if std::env::var_os("STEWARD_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty,
        "openapi.json is out of date: run `STEWARD_UPDATE_DOCS=1 cargo test -p steward-server` and commit it"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn(example("003-allcot.toml")).await;
    let document = steward_server::openapi::document(None);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let concrete = path
                .replace("{id}", "01a20000-0000-7000-8000-000000000000")
                .replace("{recipient}", "mailer");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = send(
                &app,
                method.clone(),
                &concrete,
                Some(&app.admin),
                Some(json!({})),
                Some("accounts"),
            )
            .await;
            let fallback = body
                .as_str()
                .is_some_and(|t| t.starts_with("Not found. The privacy notice"));
            assert!(
                !fallback && status != 405,
                "{method} {path} is documented but not routed ({status} {body})"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 48);
}
