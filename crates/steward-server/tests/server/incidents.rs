//! The breach register and the disclosure log over HTTP: the roles that may keep them, the
//! people told once each (in-app, e-mail, a signed password-reset webhook acknowledged by the
//! application), the report, and a gagged disclosure kept out of the access package until its
//! date.

use std::time::Duration;

use serde_json::{Value, json};
use steward_core::{Access, Principal, SubjectId};

use super::consent::call;
use super::requests::{person, secret_of, verifies, webhook, webhooks};
use super::{App, declaration, example_text, spawn};

fn outbox_breach_mails(app: &App) -> Vec<String> {
    std::fs::read_dir(app.data_dir().join("outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with("-breach.eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn post(app: &App, path: &str, key: &str, body: Value) -> (u16, Value) {
    call(app, reqwest::Method::POST, path, key, Some(body)).await
}

async fn get(app: &App, path: &str, key: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, key, None).await
}

#[tokio::test]
async fn a_breach_over_http_tells_each_person_once_and_resets_their_passwords() {
    let (hook, received) = webhook().await;
    let text = format!(
        "{}\n[breach]\npassword_reset = \"{hook}\"\n",
        example_text("004-mailpro.toml")
    );
    let app = spawn(declaration("004-mailpro.toml", text)).await;
    let mut people = Vec::new();
    for n in 0..3 {
        people.push(
            person(
                &app,
                &format!("breach{n}@example.com"),
                "account",
                json!({ "user.name": format!("Person {n}") }),
            )
            .await,
        );
    }
    let open = json!({ "title": "Support inbox exposed", "categories": ["user.contact.email"] });
    // Only the DPO and admins keep the register; a refusal is audited.
    for key in [&app.support, &app.service, &app.auditor] {
        let (status, body) = post(&app, "/v1/incidents", key, open.clone()).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = post(
        &app,
        "/v1/incidents",
        &app.dpo,
        json!({ "title": "x", "categories": ["user.contact.email"], "detected_at": "2026-11-22T09:00:00Z", "aware_at": "2026-11-22T08:00:00Z" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid-incident")),
        "awareness before detection: {body}"
    );
    let (status, opened) = post(&app, "/v1/incidents", &app.dpo, open).await;
    assert_eq!(status, 201, "{opened}");
    let number = opened["number"].as_i64().unwrap();
    let id = opened["id"].as_str().unwrap().to_owned();
    let clocks = opened["clocks"].as_array().unwrap();
    assert_eq!(
        clocks.len(),
        2,
        "authority and people, as seed 004 declares: {opened}"
    );
    assert!(
        clocks.iter().all(|c| c["due"] == "2026-11-25T10:00:00Z"),
        "72 hours from awareness: {opened}"
    );

    let base = format!("/v1/incidents/{number}");
    let (status, found) = post(
        &app,
        &format!("{base}/affected"),
        &app.dpo,
        json!({ "categories": true }),
    )
    .await;
    assert_eq!(
        (status, found["affected"]["total"].as_u64()),
        (200, Some(3)),
        "{found}"
    );
    let (status, early) = post(
        &app,
        &format!("{base}/notify"),
        &app.dpo,
        json!({ "audience": "subjects" }),
    )
    .await;
    assert_eq!(status, 409, "assessed first: {early}");
    let (status, assessed) = post(
        &app,
        &format!("{base}/assess"),
        &app.dpo,
        json!({ "risk": "high", "reason": "addresses readable by anyone with the link", "consequences": "phishing", "measures": "link revoked; passwords reset" }),
    )
    .await;
    assert_eq!(
        (status, assessed["state"].as_str()),
        (200, Some("assessed")),
        "{assessed}"
    );
    let (status, queued) = post(
        &app,
        &format!("{base}/notify"),
        &app.dpo,
        json!({ "audience": "subjects", "reset_passwords": true }),
    )
    .await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(
        queued["queued"]["by_channel"],
        json!([["email", 3], ["in-app", 3], ["password-reset", 3]])
    );
    let (status, again) = post(
        &app,
        &format!("{base}/notify"),
        &app.dpo,
        json!({ "audience": "subjects" }),
    )
    .await;
    assert_eq!(
        status, 200,
        "still sending: goes on, queues nobody: {again}"
    );
    assert_eq!(
        again["queued"]["by_channel"],
        json!([["email", 0], ["in-app", 0]])
    );

    // The server sends: a signed webhook naming the three people, and three e-mails.
    let got = webhooks(&received, 1).await;
    let (signature, body) = &got[0];
    let hook_body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(hook_body["type"], "steward.breach.password-reset");
    assert_eq!(hook_body["incident"], id.as_str());
    let mut named: Vec<String> = hook_body["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    named.sort();
    let mut expected = people.clone();
    expected.sort();
    assert_eq!(named, expected);
    assert!(
        verifies(signature, body, &secret_of(&app, "password-reset").await),
        "{signature}"
    );
    for _ in 0..100 {
        if outbox_breach_mails(&app).len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mails = outbox_breach_mails(&app);
    assert_eq!(mails.len(), 3);
    for n in 0..3 {
        assert_eq!(
            mails
                .iter()
                .filter(|m| m.contains(&format!("breach{n}@example.com")))
                .count(),
            1,
            "each once"
        );
    }
    // The application acknowledges the resets, once.
    let (status, ack) = post(
        &app,
        &format!("/v1/incidents/{id}/password-resets"),
        &app.service,
        json!({ "subjects": people }),
    )
    .await;
    assert_eq!((status, &ack["acknowledged"]), (200, &json!(3)), "{ack}");
    let (_, ack) = post(
        &app,
        &format!("/v1/incidents/{id}/password-resets"),
        &app.service,
        json!({ "subjects": people }),
    )
    .await;
    assert_eq!(ack["acknowledged"], 0);

    // In-app: the application reads the person's notice and marks it read.
    let (status, notices) = get(
        &app,
        &format!("/v1/subjects/{}/notices", people[0]),
        &app.service,
    )
    .await;
    assert_eq!(status, 200, "{notices}");
    let list = notices["notices"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0]["message"]
            .as_str()
            .unwrap()
            .contains("legal@maxony.com"),
        "{notices}"
    );
    let read = format!("/v1/subjects/{}/notices/{id}/read", people[0]);
    let (status, _) = call(&app, reqwest::Method::POST, &read, &app.service, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, reqwest::Method::POST, &read, &app.service, None).await;
    assert_eq!(status, 404, "read once");

    let shown = get(&app, &base, &app.dpo).await.1;
    let subjects_clock = shown["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["audience"] == "subjects")
        .unwrap()
        .clone();
    assert_eq!(subjects_clock["status"], "met", "{shown}");
    let report = crate::client()
        .get(app.url(&format!("{base}/report?format=md")))
        .bearer_auth(&app.dpo)
        .send()
        .await
        .unwrap();
    assert_eq!(
        report.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let report = report.text().await.unwrap();
    for item in [
        "Art. 33(3)(a)",
        "Art. 33(3)(b)",
        "Art. 33(3)(c)",
        "Art. 33(3)(d)",
        "phishing",
        "3 (found 3",
    ] {
        assert!(report.contains(item), "{item}: {report}");
    }
    // Closing waits for the authority.
    let (status, body) = post(
        &app,
        &format!("{base}/close"),
        &app.dpo,
        json!({ "reason": "done" }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = post(
        &app,
        &format!("{base}/notify"),
        &app.dpo,
        json!({ "audience": "authority", "reference": "CASE-1" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &app,
        &format!("{base}/notify"),
        &app.dpo,
        json!({ "audience": "authority" }),
    )
    .await;
    assert_eq!(status, 409, "an initial notification twice: {body}");
    let (status, closed) = post(
        &app,
        &format!("{base}/close"),
        &app.dpo,
        json!({ "reason": "contained" }),
    )
    .await;
    assert_eq!(
        (status, closed["state"].as_str()),
        (200, Some("closed")),
        "{closed}"
    );
    let (status, _) = get(&app, "/v1/incidents/not-an-incident", &app.dpo).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_gagged_disclosure_reaches_the_access_package_only_after_its_date() {
    let app = spawn(declaration(
        "004-mailpro.toml",
        example_text("004-mailpro.toml"),
    ))
    .await;
    let subject = person(
        &app,
        "gag@example.com",
        "account",
        json!({ "user.name": "Gia" }),
    )
    .await;
    let share = |extra: Value| {
        let mut b = json!({ "recipient": "zendesk", "categories": ["user.contact.email"], "subjects": [subject], "purpose": "support", "reference": "Ticket export 17" });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (status, body) = post(
        &app,
        "/v1/disclosures",
        &app.service,
        share(json!({ "gag_until": "2026-11-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, 422, "a gag in the past: {body}");
    let (status, body) = post(&app, "/v1/disclosures", &app.support, share(json!({}))).await;
    assert_eq!(status, 403, "support may not disclose: {body}");
    // A consent purpose: this person never opted in, so nothing is shared.
    let (status, body) = post(
        &app,
        "/v1/disclosures",
        &app.service,
        json!({ "recipient": "zendesk", "categories": ["user.contact.email"], "subjects": [subject], "purpose": "newsletter" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("consent-missing")),
        "{body}"
    );
    let (status, recorded) = post(
        &app,
        "/v1/disclosures",
        &app.service,
        share(json!({ "gag_until": "2026-12-22T10:00:00Z" })),
    )
    .await;
    assert_eq!(status, 201, "{recorded}");
    let (status, list) = get(&app, "/v1/disclosures", &app.service).await;
    assert_eq!(status, 403, "the log is the DPO's: {list}");
    let (_, list) = get(
        &app,
        &format!("/v1/disclosures?subject={subject}"),
        &app.dpo,
    )
    .await;
    assert_eq!(list["disclosures"].as_array().unwrap().len(), 1, "{list}");

    let requests = steward_server::requests::workflow(&app.ledger, &std::sync::Arc::default());
    let id = SubjectId(subject.parse().unwrap());
    let cli = Access::new(Principal::cli());
    let before = requests.gather(&cli, None, Some(id), &[]).await.unwrap();
    assert!(
        before.groups.iter().all(|g| g.name != "disclosures"),
        "gagged: {:?}",
        before.groups
    );
    app.clock.advance(time::Duration::days(31));
    let after = requests.gather(&cli, None, Some(id), &[]).await.unwrap();
    let group = after
        .groups
        .iter()
        .find(|g| g.name == "disclosures")
        .expect("shown once the gag ends");
    assert_eq!(group.rows.len(), 1);
    assert!(
        group.rows[0].contains(&"Zendesk".to_owned())
            && group.rows[0].contains(&"Ticket export 17".to_owned()),
        "{:?}",
        group.rows
    );
}
