//! Data-subject requests over HTTP.
//!
//! For people (no key): `POST /requests` takes a request in (rate-limited per address and per
//! e-mail; the same answer whether or not the address is known), `GET|POST /requests/verify`
//! follows the e-mailed link (GET only shows a button, so mail scanners verify nothing),
//! `POST /requests/{id}/verify` checks a 6-digit code, and `GET /requests/{id}/package` streams
//! the access package for the link's holder.
//!
//! For the operator (API key): `POST /v1/requests` (with `"vouch": true` the application
//! speaks for a signed-in person), `GET /v1/requests`, `GET /v1/requests/{id}`, `approve`,
//! `deny`, `extend`, and the recipients' acknowledgement of Art. 19 notices.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use steward_core::request::Status;
use steward_core::requests::{Intake, Notifier, RequestError, Requests, person};
use steward_core::store::RequestFilter;
use steward_core::{Access, Store};
use uuid::Uuid;

use crate::api::{ApiError, ApiState, Peer, body, refuse};
use crate::consent::{TokenQuery, form_urlencoded, page};

/// Posts webhooks: over HTTPS (TLS 1.2 or 1.3, the certificate checked against the Mozilla
/// roots, or the roots given) or plain HTTP; HTTP/1.1, 10 s for the whole exchange, redirects
/// not followed. The status is returned; anything but 2xx is retried by the job queue.
#[derive(Clone)]
pub struct HttpNotifier {
    /// `None` only if the TLS library refused its own defaults: then https:// posts fail
    /// (and are retried), and nothing goes out in the clear.
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for HttpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNotifier")
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpNotifier {
    /// A notifier that trusts the Mozilla root certificates.
    pub fn new() -> Self {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(roots)
    }

    /// A notifier that trusts only `roots` (recipients behind a private CA).
    pub fn with_roots(roots: tokio_rustls::rustls::RootCertStore) -> Self {
        use tokio_rustls::rustls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| {
                let config = b.with_root_certificates(roots).with_no_client_auth();
                tokio_rustls::TlsConnector::from(Arc::new(config))
            });
        Self {
            tls,
            timeout: std::time::Duration::from_secs(10),
        }
    }

    async fn exchange(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        let uri: axum::http::Uri = url
            .parse()
            .map_err(|_| "the recipient's address is not a URL".to_owned())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the recipient's address is neither https:// nor http://".into()),
        };
        let authority = uri
            .authority()
            .ok_or("the recipient's address has no host")?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = axum::http::Request::post(path)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("steward/", env!("CARGO_PKG_VERSION")),
            )
            .header("steward-signature", signature)
            .body(http_body_util::Full::new(axum::body::Bytes::from(
                body.to_owned(),
            )))
            .map_err(|e| e.to_string())?;
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        if !https {
            return send(hyper_util::rt::TokioIo::new(tcp), request).await;
        }
        let connector = self.tls.as_ref().ok_or("TLS is not available")?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| "the recipient's host is not a valid TLS name".to_owned())?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        send(hyper_util::rt::TokioIo::new(tls), request).await
    }
}

/// One HTTP/1.1 exchange over `io`: the response's status.
async fn send<T>(
    io: T,
    request: axum::http::Request<http_body_util::Full<axum::body::Bytes>>,
) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

impl Default for HttpNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier for HttpNotifier {
    fn post<'a>(
        &'a self,
        url: &'a str,
        body: &'a str,
        signature: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.exchange(url, body, signature))
                .await
                .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))?
        })
    }
}

/// The workflow over `ledger`, posting webhooks over HTTP.
pub fn workflow<S: Store>(ledger: &Arc<steward_core::ledger::Ledger<S>>) -> Requests<S> {
    Requests::new(Arc::clone(ledger), Arc::new(HttpNotifier::new()))
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        use steward_core::consent::TokenError;
        let e = match e {
            RequestError::Vault(v) => return v.into(),
            other => other,
        };
        let status = match &e {
            RequestError::UnknownKind(..)
            | RequestError::BadEmail
            | RequestError::UnknownPurpose(_)
            | RequestError::Shape(_)
            | RequestError::UnknownCategory(_)
            | RequestError::ReasonRequired
            | RequestError::WrongCode(_) => StatusCode::BAD_REQUEST,
            RequestError::Token(TokenError::Expired) => StatusCode::GONE,
            RequestError::Token(_) => StatusCode::BAD_REQUEST,
            RequestError::NotOffered(..)
            | RequestError::PurposeNotApplicable(_)
            | RequestError::MethodNotOffered(..)
            | RequestError::NoExtension => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::Immutable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::NotFound | RequestError::UnknownRecipient(_) => StatusCode::NOT_FOUND,
            RequestError::WrongState { .. }
            | RequestError::UsedToken
            | RequestError::AlreadyExtended
            | RequestError::Conflict => StatusCode::CONFLICT,
            RequestError::WrongRequest | RequestError::Denied(_) => StatusCode::FORBIDDEN,
            RequestError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            RequestError::Consent(c) if c.is_refusal() => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::Consent(_)
            | RequestError::Vault(_)
            | RequestError::Store(_)
            | RequestError::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return ApiError::new(
                status,
                "internal",
                "the request could not be handled; the operator's logs say why",
            );
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// A request as sent to `POST /requests` and `POST /v1/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeBody {
    /// `access`, `portability`, `rectification`, `erasure`, `restriction`, `objection`,
    /// `opt-out-sale-share`, `withdraw-consent`.
    pub kind: String,
    /// The person's e-mail address.
    pub email: String,
    /// The purpose (restriction, objection, withdrawal).
    #[serde(default)]
    pub purpose: Option<String>,
    /// New values by category (rectification).
    #[serde(default)]
    pub changes: BTreeMap<String, String>,
    /// Erase by closing the account, after the declared delay.
    #[serde(default)]
    pub close_account: bool,
    /// `email-link` or `email-code`.
    #[serde(default)]
    pub verification: Option<String>,
    /// The operator's application vouches for a signed-in person (API keys only).
    #[serde(default)]
    pub vouch: bool,
}

impl IntakeBody {
    fn intake(self) -> (Intake, bool) {
        (
            Intake {
                kind: self.kind,
                email: self.email,
                purpose: self.purpose,
                changes: self.changes.into_iter().collect(),
                close_account: self.close_account,
                verification: self.verification,
            },
            self.vouch,
        )
    }
}

fn request_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-id",
            "a request id is a UUID, as returned when the request was made",
        )
    })
}

/// `POST /requests`: a person makes a request.
pub async fn intake<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    json: Result<Json<IntakeBody>, JsonRejection>,
) -> Response {
    let access = person();
    let now = state.vault.clock().now();
    let ip = state.guard.client(&headers, peer);
    if let Err(wait) = state.guard.request_ip.check(&ip, now) {
        let entry = access.entry("request.create", now);
        return refuse(&state.vault, entry, ApiError::too_many(wait))
            .await
            .into_response();
    }
    let b = match body(json) {
        Ok(b) => b,
        Err(e) => {
            let entry = access.entry("request.create", now);
            return refuse(&state.vault, entry, e).await.into_response();
        }
    };
    let key = state
        .guard
        .key("request-email", &b.email.trim().to_lowercase());
    if let Err(wait) = state.guard.request_identity.check(&key, now) {
        let entry = access.entry("request.create", now);
        return refuse(&state.vault, entry, ApiError::too_many(wait))
            .await
            .into_response();
    }
    let (intake, vouch) = b.intake();
    match state.requests.create(&access, intake, vouch).await {
        Ok(view) => (StatusCode::ACCEPTED, Json(public_view(&view))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// What a person is told about their request: nothing that depends on whether the address
/// is known.
fn public_view(view: &steward_core::request::RequestView) -> serde_json::Value {
    let next = match view.status {
        Status::AwaitingVerification => {
            "check your e-mail: we sent a link (or a code) to confirm the request is yours"
        }
        _ => "we will write to you when it is done",
    };
    json!({
        "id": view.id,
        "kind": view.kind,
        "status": if view.status == Status::AwaitingVerification { "awaiting-verification" } else { "received" },
        "due_at": view.due_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "next": next,
    })
}

/// `GET /requests/verify?token=…`: a page with a button; following the link changes nothing.
pub async fn verify_page(query: Result<Query<TokenQuery>, QueryRejection>) -> Response {
    let token = query.ok().and_then(|q| q.0.token).unwrap_or_default();
    page(
        StatusCode::OK,
        "Confirm your request",
        "Press the button to confirm that you made this request.",
        Some(("/requests/verify", &token, "Confirm my request")),
    )
}

/// `POST /requests/verify` with the token in the query or the form: verifies the request.
/// Answers JSON when asked for it.
pub async fn verify_link<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    form: axum::body::Bytes,
) -> Response {
    let token = query
        .ok()
        .and_then(|q| q.0.token)
        .or_else(|| form_urlencoded(&form, "token"))
        .unwrap_or_default();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let result = state.requests.verify_link(&token).await;
    match (result, wants_json) {
        (Ok(view), true) => Json(public_view(&view)).into_response(),
        (Ok(_), false) => page(
            StatusCode::OK,
            "Thank you",
            "Your request is confirmed. We will write to you when it is done.",
            None,
        ),
        (Err(e), true) => ApiError::from(e).into_response(),
        (Err(e), false) => {
            let e = ApiError::from(e);
            page(e.status(), "This link does not work", e.message(), None)
        }
    }
}

/// A verification code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The 6 digits sent by e-mail.
    pub code: String,
}

/// `POST /requests/{id}/verify`: checks a 6-digit code (rate-limited per address).
pub async fn verify_code<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    Path(id): Path<String>,
    json: Result<Json<CodeBody>, JsonRejection>,
) -> Response {
    let now = state.vault.clock().now();
    let ip = state.guard.client(&headers, peer);
    if let Err(wait) = state.guard.request_ip.check(&ip, now) {
        let entry = person().entry("request.verify", now);
        return refuse(&state.vault, entry, ApiError::too_many(wait))
            .await
            .into_response();
    }
    let result = async {
        let id = request_id(&id)?;
        let b = body(json)?;
        Ok::<_, ApiError>(state.requests.verify_code(id, &b.code).await?)
    }
    .await;
    match result {
        Ok(view) => Json(public_view(&view)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A writer that hands what it is given to an async body, a chunk at a time (the channel is
/// bounded, so a slow reader slows the writer instead of filling memory).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the reader went away"))
    }
}

/// `GET /requests/{id}/package?token=…`: the access package, streamed as a ZIP.
pub async fn package<S: Store>(
    State(state): State<ApiState<S>>,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|q| q.0.token).unwrap_or_default();
    let result = async {
        let id = request_id(&id)?;
        let req = state.requests.open_download(id, &token).await?;
        let access = Access::new(steward_core::Principal {
            actor: "person".to_owned(),
            role: steward_core::Role::Admin,
            scope: steward_core::Scope {
                operations: vec![
                    steward_core::Operation::Export,
                    steward_core::Operation::Consent,
                ],
                ..steward_core::Scope::default()
            },
        });
        Ok::<_, ApiError>(
            state
                .requests
                .gather(&access, Some(id), req.subject)
                .await?,
        )
    }
    .await;
    let data = match result {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let vault = Arc::clone(&state.vault);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        match steward_export::write_package(writer, vault.declaration(), &data) {
            Ok(mut w) => {
                let _ = std::io::Write::flush(&mut w);
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"my-data-{id}.zip\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `POST /v1/requests`.
pub async fn create<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<IntakeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (intake, vouch) = match body(json) {
        Ok(b) => b.intake(),
        Err(e) => {
            let entry = access.entry("request.create", state.vault.clock().now());
            return Err(refuse(&state.vault, entry, e).await);
        }
    };
    let view = state.requests.create(&access, intake, vouch).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /v1/requests` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated statuses (`open` for every open one).
    pub status: Option<String>,
    /// A kind.
    pub kind: Option<String>,
    /// Due before this instant (RFC 3339).
    pub due_before: Option<String>,
    /// Only those open and past due.
    #[serde(default)]
    pub overdue: bool,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// `GET /v1/requests`.
pub async fn list<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", message);
    let Ok(Query(q)) = query else {
        let e = bad("use status, kind, due_before, overdue and limit; see /openapi.json".into());
        let entry = access.entry("request.list", state.vault.clock().now());
        return Err(refuse(&state.vault, entry, e).await);
    };
    let mut filter = RequestFilter::default();
    if let Some(list) = &q.status {
        filter.statuses = Status::parse_list(list).map_err(bad)?;
    }
    if let Some(kind) = &q.kind {
        if steward_policy::declaration::Right::parse(kind).is_none() {
            return Err(bad(format!("`{kind}` is not a kind of request")));
        }
        filter.kind = Some(kind.clone());
    }
    if let Some(t) = &q.due_before {
        filter.due_before = Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    bad("`due_before` is an RFC 3339 time, like 2026-12-01T00:00:00Z".into())
                })?,
        );
    }
    let views = state
        .requests
        .list(&access, filter, q.overdue, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "requests": views })).into_response())
}

/// `GET /v1/requests/{id}`: the request, and its queued work (mail, webhooks, erasure).
pub async fn show<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let (view, jobs) = state.requests.get(&access, id).await?;
    let jobs: Vec<_> = jobs
        .iter()
        .map(|j| {
            json!({
                "kind": j.kind,
                "attempts": j.attempts,
                "run_at": j.run_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "done": j.done_at.is_some(),
                "last_error": j.last_error,
            })
        })
        .collect();
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["jobs"] = json!(jobs);
    Ok(Json(body).into_response())
}

/// `POST /v1/requests/{id}/approve`.
pub async fn approve<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    Ok(Json(state.requests.approve(&access, id).await?).into_response())
}

/// A staff decision's reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why, as told to the person.
    pub reason: String,
}

/// `POST /v1/requests/{id}/deny`.
pub async fn deny<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let b = body(json)?;
    Ok(Json(state.requests.deny(&access, id, &b.reason).await?).into_response())
}

/// `POST /v1/requests/{id}/extend`.
pub async fn extend<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let b = body(json)?;
    Ok(Json(state.requests.extend(&access, id, &b.reason).await?).into_response())
}

/// `POST /v1/requests/{id}/notifications/{recipient}/ack`.
pub async fn acknowledge<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path((id, recipient)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    Ok(Json(state.requests.acknowledge(&access, id, &recipient).await?).into_response())
}
