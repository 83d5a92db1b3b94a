//! The operator's own database in the request workflow (issue 17), a real SQLite shop read and
//! written through `steward-connect`: a person only the shop knows is told what is held and
//! gets it in their package; a closed account is erased there when its date comes, not before.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::consent::{Sink, call, link_in};
use super::requests::{mail_to, person, reaches, show};
use super::{declaration, example_text, spawn_full};

const MANIFEST: &str = r#"
[dataset]
name = "shop"
url_env = "UNUSED_SHOP_DATABASE_URL"

[[tables]]
name = "customer"
purpose = "account"
primary_key = ["id"]
erase = "delete"
fields = [
  { name = "email", category = "user.contact.email", identity = "email" },
  { name = "name", category = "user.name" },
]
owns = [{ column = "id", table = "orders", to = "customer_id" }]

[[tables]]
name = "orders"
purpose = "account"
primary_key = ["id"]
erase = "delete"
context = ["total"]
fields = [{ name = "ship_to", category = "user.contact.address" }]
"#;

/// A shop database with Olga (only in the shop), Carla and Dario (also in the vault).
async fn shop(dir: &std::path::Path) -> (String, SqlitePool) {
    let path = dir.join("shop.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);
         CREATE INDEX customer_email ON customer (email);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, ship_to TEXT, total INTEGER);
         CREATE INDEX orders_customer ON orders (customer_id);
         INSERT INTO customer VALUES (1, 'olga.petrova@example.com', 'Olga Petrova'),
           (2, 'carla.rossi@example.com', 'Carla Rossi'), (3, 'dario.bianchi@example.com', 'Dario Bianchi');
         INSERT INTO orders VALUES (10, 1, 'Via Olga 1, Roma', 40), (11, 2, 'Via Carla 2, Roma', 50),
           (12, 3, 'Via Dario 3, Roma', 60);",
    )
    .execute(&pool)
    .await
    .unwrap();
    (format!("sqlite:{}", path.display()), pool)
}

async fn customers(pool: &SqlitePool) -> Vec<String> {
    sqlx::query_scalar("SELECT email FROM customer ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn served_with_shop(sink: &Sink, url: &str) -> super::App {
    let manifest = steward_connect::Manifest::parse(MANIFEST).unwrap();
    let source = steward_connect::Source::connect("shop", url).await.unwrap();
    let connector = steward_connect::Connector { manifest, source };
    let mailer = Arc::new(
        steward_server::mail::SmtpMailer::new(
            &format!("smtp://127.0.0.1:{}", sink.port),
            "Mailpro Privacy <privacy@mailpro.example>",
        )
        .unwrap(),
    );
    let config = steward_server::ServerConfig {
        sources: vec![Arc::new(connector)],
        ..steward_server::ServerConfig::default()
    };
    spawn_full(
        declaration("004-mailpro.toml", example_text("004-mailpro.toml")),
        config,
        mailer,
        tempfile::tempdir().unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_person_only_the_shop_knows_is_told_what_is_held_and_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pool) = shop(dir.path()).await;
    let sink = Sink::start().await;
    let app = served_with_shop(&sink, &url).await;
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "access", "email": "olga.petrova@example.com", "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let shown = reaches(&app, &id, "completed").await;
    assert_eq!(shown["outcome"]["found"], true, "{shown}");
    let mail = mail_to(&sink, "olga.petrova@example.com", "/package?token=").await;
    assert!(!mail.contains("We hold no personal data"), "{mail}");
    let link = link_in(&mail, &format!("/requests/{id}/package"));
    let zip = crate::get(link).await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut html = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").unwrap(), &mut html).unwrap();
    assert!(
        html.contains("Olga Petrova") && html.contains("Via Olga 1, Roma"),
        "{html}"
    );
    assert!(!html.contains("We hold no personal data"), "{html}");
    assert!(!html.contains("Carla") && !html.contains("Dario"), "{html}");
}

#[tokio::test]
async fn a_closed_account_is_erased_in_the_shop_when_its_date_comes_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pool) = shop(dir.path()).await;
    let sink = Sink::start().await;
    let app = served_with_shop(&sink, &url).await;
    // Carla and Dario have accounts in the vault too; Olga only in the shop.
    person(&app, "carla.rossi@example.com", "account", json!({})).await;
    person(&app, "dario.bianchi@example.com", "account", json!({})).await;
    let mut ids = Vec::new();
    for email in [
        "carla.rossi@example.com",
        "dario.bianchi@example.com",
        "olga.petrova@example.com",
    ] {
        let (status, created) = call(
            &app,
            reqwest::Method::POST,
            "/v1/requests",
            &app.dpo,
            Some(
                json!({ "kind": "erasure", "email": email, "close_account": true, "vouch": true }),
            ),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    mail_to(&sink, "olga.petrova@example.com", "Your account is closed").await;
    // Mailpro erases 45 days after closure: until then the shop keeps them.
    app.clock.advance(time::Duration::days(44));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(customers(&pool).await.len(), 3);
    for id in &ids {
        assert_eq!(show(&app, id).await["status"], "executing");
    }
    app.clock.advance(time::Duration::days(1));
    for id in &ids {
        let shown = reaches(&app, id, "completed").await;
        let datasets = shown["outcome"]["datasets"].to_string();
        assert!(
            datasets.contains("shop.customer: 1 deleted")
                && datasets.contains("shop.orders: 1 deleted"),
            "{shown}"
        );
    }
    assert!(customers(&pool).await.is_empty());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    mail_to(&sink, "olga.petrova@example.com", "erased").await;
}

#[tokio::test]
async fn a_shop_that_cannot_be_read_leaves_the_request_retrying_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pool) = shop(dir.path()).await;
    let sink = Sink::start().await;
    let app = served_with_shop(&sink, &url).await;
    sqlx::raw_sql("ALTER TABLE orders RENAME TO orders_moved")
        .execute(&pool)
        .await
        .unwrap();
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.dpo,
        Some(json!({ "kind": "access", "email": "olga.petrova@example.com", "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let shown = reaches(&app, &id, "verified").await;
    assert!(
        shown["history"]
            .to_string()
            .contains("could not be carried out (dataset-failed: dataset `shop`"),
        "{shown}"
    );
    assert!(sink.all().iter().all(|m| !m.contains("olga.petrova")));
    // Still down for a while: tried again and again, by one queued job, never more.
    for _ in 0..3 {
        app.clock.advance(time::Duration::minutes(10));
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let shown = show(&app, &id).await;
    assert_eq!(shown["status"], "verified", "{shown}");
    let executes = shown["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "execute" && j["done_at"].is_null())
        .count();
    assert_eq!(executes, 1, "{shown}");
    // Back, and a minute later: carried out, with her rows.
    sqlx::raw_sql("ALTER TABLE orders_moved RENAME TO orders")
        .execute(&pool)
        .await
        .unwrap();
    app.clock.advance(time::Duration::hours(1));
    let shown = reaches(&app, &id, "completed").await;
    assert_eq!(shown["outcome"]["found"], true, "{shown}");
}
