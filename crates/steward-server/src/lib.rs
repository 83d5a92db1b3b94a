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
mod auth;
pub mod consent;
pub mod error;
pub mod incidents;
pub mod mail;
pub mod openapi;
pub mod requests;
mod routes;
pub mod session;
pub mod state;
pub mod telemetry;
pub mod web;

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
use tower_http::set_header::SetResponseHeaderLayer;

/// What the server publishes, rendered once at start.
#[derive(Debug)]
struct Published {
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

/// How the server guards itself: rate limits, whether a proxy's `X-Forwarded-For` is
/// believed, and what one connection may hold.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Rate limits.
    pub rates: api::Rates,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_forwarded: bool,
    /// Connection limits.
    pub connections: Connections,
    /// Serve `/metrics` without a key on this address too (a network only scrapers reach).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Posts Art. 19 notices to recipients' webhooks: the Mozilla roots by default, or a
    /// private CA's ([`requests::HttpNotifier::from_ca_file`], `serve --webhook-ca`).
    pub webhooks: Arc<requests::HttpNotifier>,
    /// The operator's own databases, whose rows join the vault's in access packages.
    pub sources: Vec<Arc<dyn steward_core::retention::Dataset>>,
    /// The outbox folder the mailer writes to, whose old messages the retention sweeps
    /// delete (`None` with SMTP).
    pub outbox: Option<std::path::PathBuf>,
    /// The privacy centre's logo (`[centre] logo`, read by `steward serve`): its bytes and
    /// content type.
    pub logo: Option<(Vec<u8>, &'static str)>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
        f.debug_struct("ServerConfig")
            .field("rates", &self.rates)
            .field("trust_forwarded", &self.trust_forwarded)
            .field("connections", &self.connections)
            .field("metrics_listen", &self.metrics_listen)
            .field("webhooks", &self.webhooks)
            .field("sources", &sources)
            .field("outbox", &self.outbox)
            .field("logo", &self.logo.as_ref().map(|(b, t)| (b.len(), *t)))
            .finish()
    }
}

/// What the server lets connections hold, so that nobody can keep it busy by connecting
/// and saying nothing, or saying it a byte at a time.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max: usize,
    /// A request's headers must arrive within this; a kept-alive connection that sends no
    /// new request within it is closed (hyper's header-read timeout covers both).
    pub header_timeout: std::time::Duration,
    /// A request must be read in full and answered within this (`408` otherwise): a body sent
    /// a byte at a time cannot hold a connection. A download's stream is not counted.
    pub request_timeout: std::time::Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            max: 1024,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
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
    app_observed(
        declaration,
        ledger,
        config,
        Arc::new(telemetry::Metrics::new()),
    )
}

/// As [`app_with`], counting into `metrics` (kept across reloads by [`serve_reloading`]):
/// every request logged and counted by route template, with a `Steward-Request-Id`.
pub fn app_observed<S: Store>(
    declaration: &Declaration,
    ledger: Arc<Ledger<S>>,
    config: &ServerConfig,
    metrics: Arc<telemetry::Metrics>,
) -> Router {
    let web = Arc::new(web::Web::new(
        declaration,
        &ledger.options().public_url,
        config.logo.clone(),
    ));
    let state = api::ApiState {
        web: Arc::clone(&web),
        vault: Arc::clone(ledger.vault()),
        requests: Arc::new(requests::workflow_with(
            &ledger,
            &config.webhooks,
            &config.sources,
        )),
        ledger,
        guard: Arc::new(api::Guard::new(config.rates, config.trust_forwarded)),
        metrics: Arc::clone(&metrics),
        keys: Arc::default(),
    };
    let ready = Arc::clone(&state.ledger);
    let api_description = Arc::new(openapi::document(Some(declaration)));
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
            post(consent::choices::<S>)
                .options(consent::preflight)
                .layer(consent::choices_limit()),
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
            get(move || async move { axum::Json(api_description.as_ref().clone()) }),
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
        .merge(web::centre::router(web::centre::Pages {
            api: state.clone(),
            web: Arc::clone(&web),
        }))
        .merge(web::console::router(web::centre::Pages {
            api: state.clone(),
            web,
        }))
        .merge(routes::router(state))
        .merge(
            Router::new()
                .route("/readyz", get(readyz::<S>))
                .with_state(ready),
        )
        .route_layer(axum::middleware::from_fn(telemetry::mark_route))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            telemetry::observe,
        ))
        // Every answer, whatever route made it: never sniffed into another type, never
        // leaking its address (links carry tokens) to the next site.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// `GET /readyz`: 200 when the store is still held (on SQLite: its files are the ones opened),
/// answers, and holds Steward's tables (migrations applied); 503 otherwise, with the cause in
/// the log only.
async fn readyz<S: Store>(State(ledger): State<Arc<Ledger<S>>>) -> Response {
    let store = ledger.vault().store();
    let now = ledger.vault().clock().now();
    let ready = match (
        store.keep_held().await,
        store.root("index").await,
        store.operations(now, now).await,
    ) {
        (Ok(()), Ok(Some(_)), Ok(_)) => Ok(()),
        (Ok(()), Ok(None), _) => Err("the store holds no root key".to_owned()),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e.to_string()),
    };
    match ready {
        Ok(()) => axum::Json(serde_json::json!({ "ready": true })).into_response(),
        Err(cause) => {
            tracing::error!(target: "steward::ready", %cause, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "ready": false })),
            )
                .into_response()
        }
    }
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
        markdown: notice.to_markdown(),
        version: declaration.policy.version.clone(),
        csp,
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/privacy") }))
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

/// Serves the application on `listener` until `shutdown` completes, then lets the
/// connections in flight finish their requests.
///
/// HTTP/1.1 over hyper: at most `config.connections.max` connections at once (more wait in
/// the backlog), headers within `header_timeout` (a connection sending nothing, or a byte at a
/// time, or idling between requests longer, is closed), a whole request read and answered
/// within `request_timeout`, and request heads of at most 64 KiB.
///
/// # Errors
/// None today: a connection that fails is dropped and the server goes on.
pub async fn serve<S: Store>(
    listener: TcpListener,
    declaration: &Declaration,
    ledger: Arc<Ledger<S>>,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (_keep, reloads) = tokio::sync::mpsc::channel(1);
    serve_reloading(listener, declaration, ledger, config, shutdown, reloads).await
}

/// A changed declaration for a running server, with the ledger already opened over it (so
/// it was checked against the data: see `steward_core::ledger::terms_drift`).
pub struct Reload<S: Store> {
    /// The new declaration.
    pub declaration: Declaration,
    /// The ledger (and vault) over it.
    pub ledger: Arc<Ledger<S>>,
    /// Told once every request that starts from now on is answered under the new declaration.
    pub applied: Option<tokio::sync::oneshot::Sender<()>>,
}

/// As [`serve`], and each [`Reload`] received replaces the declaration without a restart:
/// every request that starts after it is answered under the new one (the notice, the API
/// description, the permits, the request rules), requests already running finish under the
/// old one, and the background work moves to the new ledger. No connection is dropped.
///
/// # Errors
/// As [`serve`].
pub async fn serve_reloading<S: Store>(
    listener: TcpListener,
    declaration: &Declaration,
    ledger: Arc<Ledger<S>>,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    mut reloads: tokio::sync::mpsc::Receiver<Reload<S>>,
) -> std::io::Result<()> {
    let limits = config.connections;
    let metrics = Arc::new(telemetry::Metrics::new());
    if let Some(address) = config.metrics_listen {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {address} for /metrics (--metrics-listen): {e}"),
            )
        })?;
        tokio::spawn(serve_metrics(
            listener,
            Arc::clone(&metrics),
            Arc::clone(&ledger),
        ));
    }
    let build = |declaration: &Declaration, ledger: Arc<Ledger<S>>| {
        app_observed(declaration, ledger, config, Arc::clone(&metrics)).layer(
            tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ),
        )
    };
    // The store hold lost (a PostgreSQL connection dropped and a rotation took the store):
    // the server stops rather than write under a key that may be gone.
    let lost = Arc::new(tokio::sync::Notify::new());
    let mut work = Background::start(Arc::clone(&ledger), config, Arc::clone(&lost));
    let (current, app) = tokio::sync::watch::channel(build(declaration, ledger));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    tokio::pin!(shutdown);
    let mut reloading = true;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A connection that failed before it was accepted (reset, out of files):
                // the next one may work.
                Err(_) => continue,
            },
            reload = reloads.recv(), if reloading => {
                match reload {
                    Some(Reload { declaration, ledger, applied }) => {
                        // The old work finishes the job it is on; the new takes over.
                        let old = std::mem::replace(
                            &mut work,
                            Background::start(Arc::clone(&ledger), config, Arc::clone(&lost)),
                        );
                        tokio::spawn(old.stop());
                        drop(current.send_replace(build(&declaration, ledger)));
                        if let Some(applied) = applied {
                            let _ = applied.send(());
                        }
                    }
                    None => reloading = false,
                }
                continue;
            }
            () = &mut shutdown => break,
            () = lost.notified() => {
                graceful.shutdown().await;
                work.stop().await;
                return Err(std::io::Error::other(
                    "this server can no longer write to the store safely (the log line before says why: its files were removed or replaced, or another process took the store to itself after the lock's connection was lost): it stopped rather than lose what it writes; start it again once the store is whole",
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                // The application in force when the request starts.
                let app = app.borrow().clone();
                tower::ServiceExt::oneshot(app, request)
            });
        let connection =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    graceful.shutdown().await;
    work.stop().await;
    Ok(())
}

/// The background work of one ledger, stopped between two rounds, never in the middle of a
/// job (an aborted job would stay leased and run again after its lease: a mail sent twice).
struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    refresher: tokio::task::JoinHandle<()>,
}

impl Background {
    fn start<S: Store>(
        ledger: Arc<Ledger<S>>,
        config: &ServerConfig,
        lost: Arc<tokio::sync::Notify>,
    ) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let requests = Arc::new(requests::workflow_with(
            &ledger,
            &config.webhooks,
            &config.sources,
        ));
        let sweeper =
            steward_core::retention::Sweeper::new(Arc::clone(&ledger), config.outbox.clone())
                .with_sources(config.sources.clone());
        Self {
            stop,
            refresher: tokio::spawn(refresh(Arc::clone(&ledger), stopped.clone())),
            task: tokio::spawn(background(ledger, requests, sweeper, stopped, lost)),
        }
    }

    /// Asks the work to stop after the round it is in, and waits for it (30 s at most).
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), self.task).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.refresher).await;
    }
}

/// `/metrics` without a key on an address of its own (`--metrics-listen`), for a scraper on a
/// network the operator controls. The ledger it reads the queue from is the first one; the
/// store, which is what it reads, stays the same across reloads.
async fn serve_metrics<S: Store>(
    listener: TcpListener,
    metrics: Arc<telemetry::Metrics>,
    ledger: Arc<Ledger<S>>,
) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, ledger) = (Arc::clone(&metrics), Arc::clone(&ledger));
            async move { telemetry::scrape(&metrics, &ledger).await }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(target: "steward::metrics", cause = %e, "the metrics listener stopped");
    }
}

/// How many breach notices (e-mails) the server sends a second.
const BREACH_NOTICES_PER_SECOND: u32 = 50;

/// How often the ledger looks for events other processes wrote.
const LEDGER_REFRESH: std::time::Duration = std::time::Duration::from_millis(250);

/// The ledger picks up the consent events other processes wrote (several servers on one
/// PostgreSQL, the CLI beside a server) every [`LEDGER_REFRESH`], in a task of its own: a
/// permit answered here follows a withdrawal made through another process within that time
/// (and one query), whatever the job queue is doing — it used to wait behind the jobs' round,
/// 17.7 s while mail went to a slow SMTP server.
async fn refresh<S: Store>(ledger: Arc<Ledger<S>>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(LEDGER_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match ledger.refresh().await {
            Ok(()) => failing = false,
            // Said once per outage, not four times a second.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(target: "steward::background", cause = %e, "the consent ledger could not be refreshed; retried every 250 ms");
            }
            Err(_) => {}
        }
    }
}

/// What runs beside the server (besides the ledger's refresh, see [`refresh`]): due jobs run (mail, webhooks, delayed erasure; every second), unverified requests
/// expire, and every minute queued policy notices go out (500 at a time), refusals past a rate
/// limit that were only counted are summarised in the audit, ended rate-limit windows
/// are forgotten, and data kept under a legal hold whose period is over is destroyed (up to
/// 500 people a minute); and the retention sweep runs when its declared schedule says
/// (`[retention] schedule`, daily by default), in one process of those sharing the store.
async fn background<S: Store>(
    ledger: Arc<Ledger<S>>,
    requests: Arc<steward_core::requests::Requests<S>>,
    sweeper: steward_core::retention::Sweeper<S>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    lost: Arc<tokio::sync::Notify>,
) {
    let incidents = steward_core::incidents::Incidents::new(Arc::clone(&requests));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = ledger.vault().store().keep_held().await {
            tracing::error!(target: "steward::background", cause = %e, "this server can no longer write to the store safely; stopping");
            lost.notify_one();
            return;
        }
        // An erasure a failure cut off (the disk full between SQLite's two files) is
        // finished and audited as soon as it can be; until then it is retried, not fatal.
        match ledger.vault().finish_interrupted().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(target: "steward::background", erasures = n, "interrupted erasures finished");
            }
            Err(e) => {
                tracing::warn!(target: "steward::background", cause = %e, "an interrupted erasure could not be finished yet; retried every second");
            }
        }
        if let Err(e) = requests.tick().await {
            tracing::error!(target: "steward::background", cause = %e, "the job queue could not run");
        }
        // Breach notices to people: at most 50 e-mails a second, each sent once.
        match incidents
            .deliver(BREACH_NOTICES_PER_SECOND, &mut |_| {})
            .await
        {
            Ok(d) if d.failed > 0 || d.given_up > 0 => {
                tracing::warn!(target: "steward::incidents", sent = d.sent, failed = d.failed, given_up = d.given_up, "breach notices failed; they are retried with backoff (`steward incident show` names the states)");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(target: "steward::incidents", cause = %e, "breach notices could not be sent");
            }
        }
        if n.is_multiple_of(60) {
            if let Err(e) = ledger.send_policy_notices(500).await {
                tracing::error!(target: "steward::background", cause = %e, "policy notices could not be sent");
            }
            if let Err(e) = summarise_limits(ledger.vault()).await {
                tracing::error!(target: "steward::background", cause = %e, "rate-limit refusals could not be summarised");
            }
            if let Err(e) = ledger.vault().end_holds(500).await {
                tracing::error!(target: "steward::background", cause = %e, "ended legal holds could not be destroyed");
            }
            match sweeper.scheduled().await {
                Ok(None) => {}
                Ok(Some(sweep)) => {
                    tracing::info!(target: "steward::retention", removed = sweep.total(), people_erased = sweep.subjects_erased, "retention sweep done (`steward audit` has its counts per rule)");
                }
                Err(e) => {
                    tracing::error!(target: "steward::retention", cause = %e, "the retention sweep failed; it is retried in an hour");
                }
            }
        }
        // Every 10 minutes, what an operator must act on: requests late or about to be.
        if n.is_multiple_of(600) {
            match telemetry::operations(&ledger).await.0 {
                Ok(ops) if ops.requests_overdue > 0 || ops.requests_due_soon > 0 => {
                    tracing::warn!(target: "steward::requests", overdue = ops.requests_overdue, due_within_3_days = ops.requests_due_soon, open = ops.requests_open, "data-subject requests need an answer (`steward request list --overdue`)");
                }
                Ok(ops) if ops.jobs_failing > 0 => {
                    tracing::warn!(target: "steward::jobs", failing = ops.jobs_failing, pending = ops.jobs_pending, "jobs keep failing (`steward request show` names each one's last error)");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(target: "steward::background", cause = %e, "the queue could not be read")
                }
            }
            match incidents
                .due(&steward_core::Access::new(
                    steward_core::Principal::steward("incidents"),
                ))
                .await
            {
                Ok(due) => {
                    for (number, clock) in due {
                        tracing::warn!(target: "steward::incidents", incident = number, audience = clock.audience, due = %clock.due, status = ?clock.status, "a breach notification is due (`steward incident list --due`)");
                    }
                }
                Err(e) => {
                    tracing::error!(target: "steward::incidents", cause = %e, "the breach register could not be read");
                }
            }
        }
        n += 1;
    }
}

/// Writes one audit entry (`rate-limit.summary`) for the refusals past a rate limit that were
/// not audited one by one since the last summary, and forgets ended windows. The server runs
/// it every minute.
pub async fn summarise_limits<S: Store>(
    vault: &steward_core::Vault<S>,
) -> Result<(), steward_core::VaultError> {
    let now = vault.clock().now();
    let unrecorded = vault.limits().take_unrecorded();
    if unrecorded > 0 {
        let mut entry = steward_core::Access::new(steward_core::Principal::cli())
            .entry("rate-limit.summary", now);
        entry.actor = "steward".to_owned();
        entry.role = "none".to_owned();
        entry.outcome = steward_core::audit::Outcome::Denied;
        entry.code = Some("rate-limited".to_owned());
        entry.detail = Some(format!(
            "{unrecorded} more refusals past a rate limit, not recorded one by one"
        ));
        vault.record(entry).await?;
    }
    vault.store().forget_counts(now).await?;
    Ok(())
}
