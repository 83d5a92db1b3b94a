//! What the server tells its operator (issue 16): a structured log line for every request and
//! every failure, and Prometheus metrics.
//!
//! Nothing personal is ever logged or counted: requests are named by their route template
//! (`/v1/subjects/{id}`), never their path or query (links carry tokens, paths carry ids); jobs
//! by kind, request id and error code; failures by the error's code and its cause, which names
//! tables, categories and pseudonymous ids, never a value. A test runs a full flow and finds none
//! of its addresses, names or numbers in the captured log.
//!
//! Every answer carries `Steward-Request-Id`; the API's audit entries for a call use the same id,
//! so a log line, an audit entry and a client's report can be matched.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use steward_core::Store;
use steward_core::store::Operations;
use uuid::Uuid;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One readable line per event, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for a log collector.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(format!("`{other}` is not a log format: use pretty or json")),
        }
    }
}

/// Starts logging to standard error in `format`, at the levels `RUST_LOG` names (default:
/// `info`, e.g. `RUST_LOG=steward=debug,sqlx=warn`). Once per process; a second call is a no-op.
///
/// # Errors
/// When `RUST_LOG` cannot be read as a filter (the text says why).
pub fn init_logging(format: LogFormat) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => {
            EnvFilter::try_new(&text).map_err(|e| format!("RUST_LOG=`{text}`: {e}"))?
        }
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        // A closed standard error must not take requests down: tracing would report the failed
        // write with `eprintln!`, which panics when standard error is gone.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// A request's id, the one in `Steward-Request-Id` and in its audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// A delivery's channel (`mail`, `webhook`) and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivery {
    channel: &'static str,
    outcome: &'static str,
}

/// Deliveries counted for the whole process: mail and webhooks are sent by parts made before
/// any server (the mailer is the command's), and every [`Metrics`] registers this one family.
static DELIVERIES: std::sync::LazyLock<Family<Delivery, Counter>> =
    std::sync::LazyLock::new(Family::default);

/// Counts one delivery on `channel` (`mail`, `webhook`) with `outcome`: for mail `sent` (an
/// SMTP server took it), `written` (to the outbox folder, no SMTP server set) or `failed`; for
/// webhooks `accepted` (2xx), `refused` (another status) or `unreachable`.
pub fn delivered(channel: &'static str, outcome: &'static str) {
    DELIVERIES
        .get_or_create(&Delivery { channel, outcome })
        .inc();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State_ {
    state: String,
}

/// The server's Prometheus metrics: kept for the life of the process (a reloaded declaration
/// keeps them), read at each scrape.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram>,
    permits: Family<Reason, Counter>,
    jobs: Family<State_, Gauge>,
    oldest_job: Gauge<f64, AtomicU64>,
    open_requests: Family<State_, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series, registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("steward");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by route template",
            latency.clone(),
        );
        let permits = Family::<Reason, Counter>::default();
        registry.register(
            "permits",
            "Permits answered, by reason (consent-given, no-consent, withdrawn …)",
            permits.clone(),
        );
        for reason in steward_core::permit::Reason::ALL {
            let _ = permits.get_or_create(&Reason {
                reason: reason.code().to_owned(),
            });
        }
        let jobs = Family::<State_, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the queue: pending (not done), running (leased now), failing (last attempt failed, retried with backoff)",
            jobs.clone(),
        );
        let oldest_job = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_due_job_age_seconds",
            "How long the longest-waiting due job has waited (0 when none is due)",
            oldest_job.clone(),
        );
        registry.register(
            "deliveries",
            "Mail and webhook deliveries, by channel and outcome (mail: sent to SMTP, written to the outbox, failed; webhook: accepted, refused, unreachable)",
            DELIVERIES.clone(),
        );
        // Every series at zero from the start, so an alert on a rate sees it before the first.
        for (channel, outcome) in [
            ("mail", "sent"),
            ("mail", "written"),
            ("mail", "failed"),
            ("webhook", "accepted"),
            ("webhook", "refused"),
            ("webhook", "unreachable"),
        ] {
            let _ = DELIVERIES.get_or_create(&Delivery { channel, outcome });
        }
        let open_requests = Family::<State_, Gauge>::default();
        registry.register(
            "requests",
            "Data-subject requests not finished: open (all of them), and of those due-soon (due within 3 days) and overdue",
            open_requests.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            permits,
            jobs,
            oldest_job,
            open_requests,
        }
    }

    /// Counts one answered request.
    fn answered(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                method: method.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one permit answered with `reason`.
    pub fn permit(&self, reason: &str) {
        self.permits
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets the queue and request gauges from `ops`, measured at `now`.
    pub fn set_operations(&self, ops: &Operations, now: time::OffsetDateTime) {
        let gauge = |family: &Family<State_, Gauge>, state: &str, n: u64| {
            family
                .get_or_create(&State_ {
                    state: state.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        gauge(&self.jobs, "pending", ops.jobs_pending);
        gauge(&self.jobs, "running", ops.jobs_running);
        gauge(&self.jobs, "failing", ops.jobs_failing);
        gauge(&self.open_requests, "open", ops.requests_open);
        gauge(&self.open_requests, "due-soon", ops.requests_due_soon);
        gauge(&self.open_requests, "overdue", ops.requests_overdue);
        let age = ops
            .oldest_due_job
            .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
        self.oldest_job.set(age);
    }

    /// The metrics in the Prometheus text format.
    ///
    /// # Errors
    /// Only when formatting fails, which writing to a `String` does not.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Marks an answer with the route template that made it (a `route_layer`, where axum knows it),
/// so the outer [`observe`] can log and count it.
pub async fn mark_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Gives every request an id (`Steward-Request-Id` on the answer), then logs and counts its
/// answer: route template, method, status, latency. Answers of 5xx are logged as errors
/// (their cause was logged where it happened).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = Uuid::new_v4();
    request.extensions_mut().insert(RequestId(id));
    // A made-up method is `OTHER`: a label per method would let anyone grow the metrics.
    let method = match *request.method() {
        axum::http::Method::GET
        | axum::http::Method::POST
        | axum::http::Method::PUT
        | axum::http::Method::PATCH
        | axum::http::Method::DELETE
        | axum::http::Method::HEAD
        | axum::http::Method::OPTIONS => request.method().as_str().to_owned(),
        _ => "OTHER".to_owned(),
    };
    // The clock is read only to measure, never to decide: a monotonic duration.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let took = started.elapsed();
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let status = response.status();
    metrics.answered(&route, &method, status, took);
    // Microsecond precision: what a reader compares, without a float's tail.
    let latency_ms = (took.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    if status.is_server_error() {
        tracing::error!(target: "steward::http", request_id = %id, %method, %route, status = status.as_u16(), latency_ms, "answered");
    } else {
        tracing::info!(target: "steward::http", request_id = %id, %method, %route, status = status.as_u16(), latency_ms, "answered");
    }
    if !response.headers().contains_key("steward-request-id")
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert("steward-request-id", value);
    }
    response
}

/// How the queue and the requests stand now (requests due within 3 days count as due soon),
/// and the time it was read at.
pub async fn operations<S: Store>(
    ledger: &steward_core::ledger::Ledger<S>,
) -> (
    Result<Operations, steward_core::StoreError>,
    time::OffsetDateTime,
) {
    let now = ledger.vault().clock().now();
    let ops = ledger
        .vault()
        .store()
        .operations(now, now + time::Duration::days(3))
        .await;
    (ops, now)
}

/// `GET /metrics`: the metrics, the queue and request gauges read from the store first.
pub async fn scrape<S: Store>(
    metrics: &Metrics,
    ledger: &steward_core::ledger::Ledger<S>,
) -> Response {
    match operations(ledger).await {
        (Ok(ops), now) => metrics.set_operations(&ops, now),
        (Err(e), _) => {
            tracing::error!(target: "steward::metrics", cause = %e, "the queue and request gauges could not be read")
        }
    }
    match metrics.encode().map(with_retention) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Adds the last retention sweep this process ran (its date, the records it removed per rule,
/// the people it erased) before the exposition's `# EOF`.
fn with_retention(text: String) -> String {
    let Some(last) = steward_core::retention::metrics::last() else {
        return text;
    };
    let body = text.strip_suffix("# EOF\n").unwrap_or(&text);
    let mut out = String::with_capacity(body.len() + 512);
    out.push_str(body);
    out.push_str("# HELP steward_retention_last_sweep_seconds The date the last retention sweep ran as of (Unix seconds).\n# TYPE steward_retention_last_sweep_seconds gauge\n");
    out.push_str(&format!(
        "steward_retention_last_sweep_seconds {}\n",
        last.as_of
    ));
    out.push_str("# HELP steward_retention_removed Records the last retention sweep removed, by rule.\n# TYPE steward_retention_removed gauge\n");
    for (rule, n) in &last.removed {
        let rule = rule.replace(['\\', '"', '\n'], "_");
        out.push_str(&format!(
            "steward_retention_removed{{rule=\"{rule}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP steward_retention_erased People the last retention sweep erased.\n# TYPE steward_retention_erased gauge\n");
    out.push_str(&format!(
        "steward_retention_erased {}\n# EOF\n",
        last.erased
    ));
    out
}
