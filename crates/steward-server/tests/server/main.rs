//! The published notice over real HTTP, and in a real browser.

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;

use std::net::SocketAddr;
use std::path::PathBuf;

use steward_policy::{Declaration, Source};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A declaration from the examples folder.
pub fn example(name: &str) -> Declaration {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let source = Source::new(name, std::fs::read_to_string(path).expect("example"));
    steward_policy::check(&source)
        .expect("readable")
        .declaration
        .expect("valid")
}

/// A running server on a free loopback port; stops when dropped.
pub struct App {
    /// Where it listens.
    pub address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Starts the server for `declaration` on a free port.
pub async fn spawn(declaration: Declaration) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = steward_server::serve(listener, &declaration, async {
            let _ = stopped.await;
        })
        .await;
    });
    App {
        address,
        _stop: stop,
    }
}

#[tokio::test]
async fn the_notice_is_served_with_a_strict_content_security_policy() {
    let app = spawn(example("004-mailpro.toml")).await;
    let response = reqwest::get(format!("http://{}/privacy", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let body = response.text().await.unwrap();
    assert!(body.contains("<h1>Privacy notice: Mailpro</h1>"));
    assert!(body.contains("45 to 60 days after account closure"));
}

#[tokio::test]
async fn the_markdown_notice_and_health_check_are_served() {
    let app = spawn(example("003-allcot.toml")).await;
    let md = reqwest::get(format!("http://{}/privacy.md", app.address))
        .await
        .unwrap();
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(
        md.text()
            .await
            .unwrap()
            .starts_with("# Privacy notice: ALLCOT")
    );
    let health: serde_json::Value = reqwest::get(format!("http://{}/healthz", app.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["policy_version"], "2018-05-18");
}

#[tokio::test]
async fn unknown_paths_are_404_and_the_root_leads_to_the_notice() {
    let app = spawn(example("003-allcot.toml")).await;
    let missing = reqwest::get(format!("http://{}/wp-admin", app.address))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("/privacy"));
    let root = reqwest::get(format!("http://{}/", app.address))
        .await
        .unwrap();
    assert_eq!(root.url().path(), "/privacy", "redirected");
}
