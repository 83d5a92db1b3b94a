//! Steward's HTTP server.
//!
//! Serves what the declaration publishes: the privacy notice as HTML (`/privacy`) and
//! Markdown (`/privacy.md`), and a health check (`/healthz`). Every page carries a strict
//! Content-Security-Policy: nothing loads from anywhere, and the one inline stylesheet is
//! allowed by its SHA-256 hash. The API, privacy centre and admin console build on this.
//!
//! Depends on `steward-policy` and `steward-core`; the binary depends on it, never the other
//! way round. Generic over the store: `serve::<SqliteStore>` or `serve::<PgStore>`.

pub mod api;
pub mod openapi;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use steward_core::{Store, Vault};
use steward_policy::Declaration;
use steward_policy::notice::Notice;
use tokio::net::TcpListener;

/// What the server publishes, rendered once at start.
#[derive(Debug)]
struct Published {
    html: String,
    markdown: String,
    version: String,
    csp: HeaderValue,
}

/// The Content-Security-Policy for pages whose only inline content is `stylesheet`.
pub fn content_security_policy(stylesheet: &str) -> String {
    let hash =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(stylesheet.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// How the server guards itself: rate limits and whether a proxy's `X-Forwarded-For` is
/// believed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerConfig {
    /// Rate limits.
    pub rates: api::Rates,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_forwarded: bool,
}

/// The whole application with default limits.
pub fn app<S: Store>(declaration: &Declaration, vault: Arc<Vault<S>>) -> Router {
    app_with(declaration, vault, &ServerConfig::default())
}

/// The whole application: the published notice, the API over `vault`, and `/openapi.json`.
pub fn app_with<S: Store>(
    declaration: &Declaration,
    vault: Arc<Vault<S>>,
    config: &ServerConfig,
) -> Router {
    let state = api::ApiState {
        vault,
        guard: Arc::new(api::Guard::new(config.rates, config.trust_forwarded)),
    };
    router(declaration)
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(api::router(state))
}

/// The published notice's routes for a declaration.
pub fn router(declaration: &Declaration) -> Router {
    let notice: Notice = steward_policy::notice::build(declaration);
    let csp = HeaderValue::from_str(&content_security_policy(Notice::stylesheet()))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let published = Arc::new(Published {
        html: notice.to_html(),
        markdown: notice.to_markdown(),
        version: declaration.policy.version.clone(),
        csp,
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/privacy") }))
        .route("/privacy", get(privacy_html))
        .route("/privacy.md", get(privacy_markdown))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(published)
}

fn secure_headers(published: &Published, content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, published.csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

async fn privacy_html(State(published): State<Arc<Published>>) -> Response {
    (
        secure_headers(&published, "text/html; charset=utf-8"),
        published.html.clone(),
    )
        .into_response()
}

async fn privacy_markdown(State(published): State<Arc<Published>>) -> Response {
    (
        secure_headers(&published, "text/markdown; charset=utf-8"),
        published.markdown.clone(),
    )
        .into_response()
}

async fn healthz(State(published): State<Arc<Published>>) -> Response {
    let body = serde_json::json!({ "status": "ok", "policy_version": published.version });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "Not found. The privacy notice is at /privacy.\n",
    )
        .into_response()
}

/// Serves the application on `listener` until `shutdown` completes.
pub async fn serve<S: Store>(
    listener: TcpListener,
    declaration: &Declaration,
    vault: Arc<Vault<S>>,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app_with(declaration, vault, config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
