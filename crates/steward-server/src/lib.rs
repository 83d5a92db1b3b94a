//! Steward's HTTP server.
//!
//! Serves what the declaration publishes: the privacy notice as HTML (`/privacy`) and
//! Markdown (`/privacy.md`), and a health check (`/healthz`). Every page carries a strict
//! Content-Security-Policy: nothing loads from anywhere, and the one inline stylesheet is
//! allowed by its SHA-256 hash. The API, privacy centre and admin console build on this.
//!
//! Depends on `steward-policy` and `steward-core`; the binary depends on it, never the other
//! way round. Generic over the store: `serve::<SqliteStore>` or `serve::<PgStore>`.

#![recursion_limit = "512"]

pub mod api;
pub mod consent;
pub mod mail;
pub mod openapi;
pub mod requests;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use steward_core::Store;
use steward_core::ledger::Ledger;
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
pub fn app<S: Store>(declaration: &Declaration, ledger: Arc<Ledger<S>>) -> Router {
    app_with(declaration, ledger, &ServerConfig::default())
}

/// The whole application with `config`: the notice, the API, and the consent endpoints.
pub fn app_with<S: Store>(
    declaration: &Declaration,
    ledger: Arc<Ledger<S>>,
    config: &ServerConfig,
) -> Router {
    let state = api::ApiState {
        vault: Arc::clone(ledger.vault()),
        requests: Arc::new(requests::workflow(&ledger)),
        ledger,
        guard: Arc::new(api::Guard::new(config.rates, config.trust_forwarded)),
    };
    let script = Arc::new(consent::script(
        declaration,
        &state.ledger.options().public_url,
    ));
    let gpc = (
        declaration.signals.gpc,
        declaration
            .policy
            .effective
            .map(|d| d.to_string())
            .unwrap_or_default(),
    );
    let links = Router::new()
        .route(
            "/consent/choices",
            post(consent::choices::<S>).options(consent::preflight),
        )
        .route(
            "/consent/confirm",
            get(|q| consent::link_page(consent::LinkKind::Confirm, q)).post(link::<S, 0>),
        )
        .route(
            "/consent/unsubscribe",
            get(|q| consent::link_page(consent::LinkKind::Unsubscribe, q)).post(link::<S, 1>),
        )
        .route(
            "/consent/accept",
            get(|q| consent::link_page(consent::LinkKind::Accept, q)).post(link::<S, 2>),
        )
        .with_state(state.clone());
    router(declaration)
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(
            Router::new()
                .route("/consent.js", get(consent::consent_js))
                .with_state(script),
        )
        .merge(
            Router::new()
                .route("/.well-known/gpc.json", get(consent::gpc_json))
                .with_state(gpc),
        )
        .merge(links)
        .merge(api::router(state))
}

async fn link<S: Store, const KIND: u8>(
    State(state): State<api::ApiState<S>>,
    headers: HeaderMap,
    api::Peer(peer): api::Peer,
    query: Result<
        axum::extract::Query<consent::TokenQuery>,
        axum::extract::rejection::QueryRejection,
    >,
    form: axum::body::Bytes,
) -> Response {
    let kind = match KIND {
        0 => consent::LinkKind::Confirm,
        1 => consent::LinkKind::Unsubscribe,
        _ => consent::LinkKind::Accept,
    };
    let token = query.ok().and_then(|q| q.0.token);
    consent::link_post(state, kind, headers, peer, token, form).await
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
    ledger: Arc<Ledger<S>>,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = tokio::spawn(background(Arc::clone(&ledger)));
    let served = axum::serve(
        listener,
        app_with(declaration, ledger, config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    background.abort();
    served
}

/// What runs beside the server: the ledger picks up events other processes wrote (every
/// second), due jobs run (mail, webhooks, delayed erasure; every second), unverified requests
/// expire, and queued policy notices go out (every minute, 500 at a time).
async fn background<S: Store>(ledger: Arc<Ledger<S>>) {
    let requests = requests::workflow(&ledger);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let _ = ledger.refresh().await;
        let _ = requests.tick().await;
        if n.is_multiple_of(60) {
            let _ = ledger.send_policy_notices(500).await;
        }
        n += 1;
    }
}
