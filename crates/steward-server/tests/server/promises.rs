//! What the promises mean after the first day, over HTTP with the seed sites' declarations:
//! purpose limitation by the purpose of collection, held data that still serves its purpose,
//! erased people who stay erased, identities that follow a correction, recipients told.

use serde_json::{Value, json};

use super::access::{bearer, call};
use super::{example, spawn};

async fn create(app: &super::App, purpose: &str, identities: Value, fields: Value) -> String {
    let (status, body, _) = call(
        app,
        reqwest::Method::POST,
        "/v1/subjects",
        &[("authorization", &bearer(&app.admin))],
        Some(json!({ "purpose": purpose, "identities": identities, "fields": fields })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn permit(app: &super::App, subject: &str, purpose: &str) -> Value {
    let (status, body, _) = call(
        app,
        reqwest::Method::GET,
        &format!("/v1/permits?subject={subject}&purpose={purpose}"),
        &[("authorization", &bearer(&app.service))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn an_erased_person_is_denied_every_purpose_their_basis_once_allowed() {
    let app = spawn(example("001-wordpress-support-portal.toml")).await;
    let id = create(
        &app,
        "accounts",
        json!([{ "kind": "email", "value": "wes@example.com" }]),
        json!({}),
    )
    .await;
    for purpose in ["fraud-prevention", "personalisation", "operations"] {
        assert_eq!(
            permit(&app, &id, purpose).await["allowed"],
            true,
            "{purpose}"
        );
    }
    let (status, receipt, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/subjects/{id}"),
        &[("authorization", &bearer(&app.admin))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    for purpose in [
        "fraud-prevention",
        "personalisation",
        "operations",
        "accounts",
    ] {
        let answer = permit(&app, &id, purpose).await;
        assert_eq!(
            (answer["allowed"].as_bool(), answer["reason"].as_str()),
            (Some(false), Some("erased")),
            "{purpose}"
        );
    }
}

async fn read(app: &super::App, key: &str, id: &str, purpose: &str) -> (u16, Value) {
    let (status, body, _) = call(
        app,
        reqwest::Method::GET,
        &format!("/v1/subjects/{id}"),
        &[
            ("authorization", &bearer(key)),
            ("steward-purpose", purpose),
        ],
        None,
    )
    .await;
    (status, body)
}

fn categories(view: &Value) -> Vec<String> {
    let mut out: Vec<String> = view["identities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i[0].as_str().unwrap_or_default().to_owned())
        .chain(
            view["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| f["category"].as_str().unwrap_or_default().to_owned()),
        )
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn what_the_contact_form_collected_is_never_read_for_marketing() {
    let app = spawn(example("000-mallegro.toml")).await;
    let id = create(
        &app,
        "contact-forms",
        json!([{ "kind": "email", "value": "cleo@example.com" }]),
        json!({ "user.name": "Cleo", "user.contact.phone_number": "+41 79 555 01 01" }),
    )
    .await;
    let (status, own) = read(&app, &app.admin, &id, "contact-forms").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(
        categories(&own),
        ["email", "user.contact.phone_number", "user.name"]
    );
    for purpose in ["outreach", "marketing-analytics"] {
        let (status, view) = read(&app, &app.admin, &id, purpose).await;
        assert_eq!(status, 200, "{view}");
        assert!(
            categories(&view).is_empty(),
            "{purpose} declares the same categories yet sees nothing: {view}"
        );
    }
}

#[tokio::test]
async fn invoices_kept_after_an_erasure_still_serve_accounting_and_the_person() {
    let app = spawn(example("004-mailpro.toml")).await;
    let id = create(
        &app,
        "account",
        json!([{ "kind": "email", "value": "ivo@example.com" }]),
        json!({ "user.name": "Ivo Invoice" }),
    )
    .await;
    let (status, body, _) = call(
        &app,
        reqwest::Method::PATCH,
        &format!("/v1/subjects/{id}/fields"),
        &[("authorization", &bearer(&app.admin))],
        Some(json!({ "purpose": "invoicing", "category": "user.financial", "value": "Invoice 2026-7: CHF 49" })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, receipt, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/subjects/{id}"),
        &[("authorization", &bearer(&app.admin))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert!(
        receipt.to_string().contains("Code of Obligations"),
        "{receipt}"
    );

    let (status, kept) = read(&app, &app.dpo, &id, "invoicing").await;
    assert_eq!(status, 200, "{kept}");
    let values: Vec<&str> = kept["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].as_str().unwrap())
        .collect();
    assert!(values.contains(&"Invoice 2026-7: CHF 49"), "{kept}");
    assert_eq!(
        categories(&kept),
        ["user.financial", "user.name"],
        "the invoice, and the account's name it goes out under (invoicing may use it), nothing else"
    );
    let (status, gone) = read(&app, &app.dpo, &id, "account").await;
    assert_eq!(
        (status, gone["error"].as_str()),
        (404, Some("not-found")),
        "{gone}"
    );
    assert_eq!(permit(&app, &id, "invoicing").await["reason"], "legal-hold");
    // The person's later access package holds it, and says why it was kept.
    let export = crate::client()
        .get(app.url(&format!("/v1/subjects/{id}/export")))
        .bearer_auth(&app.dpo)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let export: Value = export.json().await.unwrap();
    let invoice = export["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "user.financial");
    assert_eq!(
        invoice.map(|f| &f["value"]),
        Some(&json!("Invoice 2026-7: CHF 49")),
        "{export}"
    );
    let requests = steward_server::requests::workflow(&app.ledger, &std::sync::Arc::default());
    let cli = steward_core::Access::new(steward_core::Principal::cli());
    let found = requests.subject_of(&cli, "ivo@example.com").await.unwrap();
    assert_eq!(
        found.map(|s| s.to_string()),
        Some(id.clone()),
        "an access request from the address finds the kept data"
    );
    let data = requests.gather(&cli, None, found, &[]).await.unwrap();
    let zip = steward_export::write_package(
        std::io::Cursor::new(Vec::new()),
        app.ledger.vault().declaration(),
        &data,
    )
    .unwrap()
    .into_inner();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut held = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("csv/held.csv").unwrap(), &mut held).unwrap();
    assert!(held.contains("Invoice 2026-7: CHF 49"), "{held}");
    assert!(
        held.contains("kept after your erasure: Swiss accounting law"),
        "{held}"
    );
    let (status, _) = read(&app, &app.auditor, &id, "invoicing").await;
    assert_eq!(status, 403, "the auditor reads no personal data");
}

#[tokio::test]
async fn a_corrected_address_finds_the_person_and_the_old_one_does_not() {
    let app = spawn(example("004-mailpro.toml")).await;
    let id = create(
        &app,
        "account",
        json!([{ "kind": "email", "value": "old@example.com" }]),
        json!({ "user.name": "Olga" }),
    )
    .await;
    create(
        &app,
        "account",
        json!([{ "kind": "email", "value": "taken@example.com" }]),
        json!({}),
    )
    .await;
    let patch = |value: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            call(
                app,
                reqwest::Method::PATCH,
                &format!("/v1/subjects/{id}/fields"),
                &[("authorization", &bearer(&app.service))],
                Some(json!({ "purpose": "account", "category": "user.contact.email", "value": value })),
            )
            .await
        }
    };
    let (status, body, _) = patch("New@Example.com").await;
    assert_eq!(status, 204, "{body}");
    let lookup = |email: &'static str| {
        let app = &app;
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/subjects/lookup",
                &[
                    ("authorization", &bearer(&app.service)),
                    ("steward-purpose", "account"),
                ],
                Some(json!({ "kind": "email", "value": email })),
            )
            .await
        }
    };
    let (status, found, _) = lookup("new@example.com").await;
    assert_eq!(
        (status, found["id"].as_str()),
        (200, Some(id.as_str())),
        "{found}"
    );
    let (status, _, _) = lookup("old@example.com").await;
    assert_eq!(status, 404, "the old address no longer finds anyone");
    let (_, view) = read(&app, &app.service, &id, "account").await;
    assert_eq!(view["identities"], json!([["email", "new@example.com"]]));
    // Another person's address is refused, and nothing changes.
    let (status, refused, _) = patch("taken@example.com").await;
    assert_eq!(status, 409, "{refused}");
    assert!(!refused.to_string().contains("taken@"), "{refused}");
    let (status, found, _) = lookup("new@example.com").await;
    assert_eq!((status, found["id"].as_str()), (200, Some(id.as_str())));
}
