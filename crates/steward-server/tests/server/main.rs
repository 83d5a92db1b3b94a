//! The published notice over real HTTP, and in a real browser.

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod api;
mod browser;
mod centre;
mod consent;
mod datasets;
mod edges;
mod incidents;
mod pages;
mod promises;
mod requests;
mod retention;
mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use steward_core::store::prelude::*;

use std::sync::Arc;

use steward_core::api_key::NewApiKey;
use steward_core::{ManualClock, Vault};
use steward_core::{Role, Scope};
use steward_crypto::MasterKey;
use steward_policy::{Declaration, Source};
use steward_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The text of a declaration from the examples folder.
pub fn example_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(path).expect("example")
}

/// A declaration from its text.
pub fn declaration(name: &str, text: String) -> Declaration {
    let source = Source::new(name, text);
    steward_policy::check(&source)
        .expect("readable")
        .declaration
        .expect("valid")
}

/// A declaration from the examples folder.
pub fn example(name: &str) -> Declaration {
    let source = Source::new(name, example_text(name));
    steward_policy::check(&source)
        .expect("readable")
        .declaration
        .expect("valid")
}

/// A running server on a free loopback port, with its own vault; stops when dropped.
pub struct App {
    /// Where it listens.
    pub address: SocketAddr,
    /// An admin API key.
    pub admin: String,
    /// A service API key.
    pub service: String,
    /// A support API key.
    pub support: String,
    /// A DPO API key.
    pub dpo: String,
    /// An auditor API key.
    pub auditor: String,
    /// The vault's store.
    pub store: SqliteStore,
    /// The vault (to make staff accounts, read the audit).
    pub vault: Arc<Vault<SqliteStore>>,
    /// The consent ledger it serves.
    pub ledger: Arc<steward_core::ledger::Ledger<SqliteStore>>,
    /// The clock the server reads (tests move it).
    pub clock: ManualClock,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl App {
    /// `http://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The data folder (SQLite files, the outbox).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A new API key with `role`, narrowed by `scope`, made the way `steward apikey create`
    /// makes it.
    pub async fn key(&self, role: Role, scope: Scope) -> String {
        self.vault
            .create_api_key(
                &steward_core::Access::new(steward_core::Principal::cli()),
                role,
                scope,
                None,
                "test",
            )
            .await
            .unwrap()
            .secret
            .to_string()
    }
}

/// Starts the server for `declaration` on a free port, over a fresh SQLite vault.
pub async fn spawn(declaration: Declaration) -> App {
    spawn_with(declaration, steward_server::ServerConfig::default()).await
}

/// The same, with rate limits and proxy trust of its own.
pub async fn spawn_with(declaration: Declaration, config: steward_server::ServerConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer =
        Arc::new(steward_server::mail::OutboxMailer::new(outbox, "privacy@example.com").unwrap());
    spawn_full(declaration, config, mailer, dir).await
}

/// Serves `declaration` with `mailer`, its data in `dir`.
pub async fn spawn_full(
    declaration: Declaration,
    config: steward_server::ServerConfig,
    mailer: Arc<dyn steward_core::mail::Mailer>,
    dir: tempfile::TempDir,
) -> App {
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let now = time::macros::datetime!(2026-11-22 10:00 UTC);
    let mut keys = Vec::new();
    for role in [
        Role::Admin,
        Role::Service,
        Role::Support,
        Role::Dpo,
        Role::Auditor,
    ] {
        let key = NewApiKey::generate(role, Scope::default(), None, "test", now).unwrap();
        store.insert_api_key(&key.record).await.unwrap();
        keys.push(key.secret.to_string());
    }
    let declaration = Arc::new(declaration);
    let clock = ManualClock::new(now);
    let vault = Arc::new(
        Vault::open(
            store.clone(),
            &MasterKey::generate().unwrap(),
            Arc::clone(&declaration),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let ledger = Arc::new(
        steward_core::ledger::Ledger::open(
            Arc::clone(&vault),
            mailer,
            steward_core::ledger::LedgerOptions {
                public_url: format!("http://{address}"),
                unsubscribe_mailto: None,
            },
            |_| {},
        )
        .await
        .unwrap(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let served = Arc::clone(&ledger);
    tokio::spawn(async move {
        let _ = steward_server::serve(listener, &declaration, served, &config, async {
            let _ = stopped.await;
        })
        .await;
    });
    let auditor = keys.pop().unwrap();
    let dpo = keys.pop().unwrap();
    let support = keys.pop().unwrap();
    let service = keys.pop().unwrap();
    let admin = keys.pop().unwrap();
    App {
        address,
        admin,
        service,
        support,
        dpo,
        auditor,
        store,
        vault,
        ledger,
        clock,
        _stop: stop,
        _dir: dir,
    }
}

/// An HTTP client for the tests. reqwest takes its TLS from rustls without a built-in crypto
/// provider (Steward's notifier brings its own configuration); the tests install ring, the
/// provider Steward uses everywhere, as the process default first.
fn client() -> reqwest::Client {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `GET url` with [`client`].
async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    client().get(url).send().await
}

#[tokio::test]
async fn the_notice_is_served_with_a_strict_content_security_policy() {
    let app = spawn(example("004-mailpro.toml")).await;
    let response = crate::get(format!("http://{}/privacy", app.address))
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
    let md = crate::get(format!("http://{}/privacy.md", app.address))
        .await
        .unwrap();
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(
        md.text()
            .await
            .unwrap()
            .starts_with("# Privacy notice: ALLCOT")
    );
    let health: serde_json::Value = crate::get(format!("http://{}/healthz", app.address))
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
    let missing = crate::get(format!("http://{}/wp-admin", app.address))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("/privacy"));
    let root = crate::get(format!("http://{}/", app.address))
        .await
        .unwrap();
    assert_eq!(root.url().path(), "/privacy", "redirected");
}
