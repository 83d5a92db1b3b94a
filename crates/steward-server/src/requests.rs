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
use steward_core::rate_limit::Hit;
use steward_core::request::Status;
use steward_core::requests::{Intake, Notifier, RequestError, Requests, person};
use steward_core::store::RequestFilter;
use steward_core::{Access, Identity, IdentityKind, Store};
use uuid::Uuid;

use crate::consent::{TokenQuery, form_urlencoded, page};
use crate::error::{ApiError, body, refuse};
use crate::state::{ApiState, Peer, limit};

/// Posts webhooks with reqwest over rustls (the ring provider, as the rest of Steward): over
/// HTTPS (TLS 1.2 or 1.3, the certificate checked against the Mozilla roots, or the roots
/// given) or plain HTTP; HTTP/1.1, 10 s for the whole exchange, redirects not followed, no
/// proxy taken from the environment. The status is returned; anything but 2xx is retried by
/// the job queue.
#[derive(Clone, Debug)]
pub struct HttpNotifier {
    /// `None` only if the TLS library refused its own defaults: then every post fails (and is
    /// retried), and nothing goes out in the clear.
    client: Option<reqwest::Client>,
    timeout: std::time::Duration,
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
        let timeout = std::time::Duration::from_secs(10);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .and_then(|tls| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .http1_only()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .timeout(timeout)
                    .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .ok()
            });
        Self { client, timeout }
    }

    /// A notifier that trusts only the certificates in the PEM file at `path` (a private CA's
    /// bundle, `serve --webhook-ca`), not the public roots.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it: unreadable, not PEM, no
    /// certificate in it, or a certificate that cannot serve as a root.
    pub fn from_ca_file(path: &std::path::Path) -> Result<Self, String> {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the webhook CA bundle {}: {e}", path.display()))?;
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                format!(
                    "the webhook CA bundle {} is not PEM: {e:?}; give the CA's certificates as `-----BEGIN CERTIFICATE-----` blocks",
                    path.display()
                )
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "a certificate in the webhook CA bundle {} cannot be a root: {e}",
                    path.display()
                )
            })?;
        }
        if roots.is_empty() {
            return Err(format!(
                "the webhook CA bundle {} holds no certificate; give the CA's certificates as `-----BEGIN CERTIFICATE-----` blocks",
                path.display()
            ));
        }
        Ok(Self::with_roots(roots))
    }

    async fn exchange(&self, url: &str, body: &str, signature: &str) -> Result<u16, String> {
        let url = reqwest::Url::parse(url)
            .map_err(|_| "the recipient's address is not a URL".to_owned())?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("the recipient's address is neither https:// nor http://".into());
        }
        let client = self.client.as_ref().ok_or("TLS is not available")?;
        let response = client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("steward-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(failure)?;
        Ok(response.status().as_u16())
    }
}

/// Why a post failed, without its URL (a recipient's address may carry a token): the error and
/// its causes, `TLS: …` when the handshake or the certificate failed, `cannot connect: …`
/// when nothing answered.
fn failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut tls = false;
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        // rustls's error reaches here wrapped (an I/O error inside the connector's), so it is
        // known by what it says: a certificate or a handshake.
        let text = cause.to_string();
        tls |= cause.is::<tokio_rustls::rustls::Error>()
            || text.contains("certificate")
            || text.contains("handshake");
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    if tls {
        format!("TLS: {why}")
    } else if e.is_connect() {
        format!("cannot connect: {why}")
    } else {
        why
    }
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
            let answered = tokio::time::timeout(self.timeout, self.exchange(url, body, signature))
                .await
                .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))
                .and_then(|answer| answer);
            let outcome = match &answered {
                Ok(200..=299) => "accepted",
                Ok(_) => "refused",
                Err(_) => "unreachable",
            };
            crate::telemetry::delivered("webhook", outcome);
            answered
        })
    }
}

/// The workflow over `ledger`, posting webhooks over HTTP.
pub fn workflow<S: Store>(
    ledger: &Arc<steward_core::ledger::Ledger<S>>,
    webhooks: &Arc<HttpNotifier>,
) -> Requests<S> {
    workflow_with(ledger, webhooks, &[])
}

/// As [`workflow`], with the operator's own databases as sources for access packages.
pub fn workflow_with<S: Store>(
    ledger: &Arc<steward_core::ledger::Ledger<S>>,
    webhooks: &Arc<HttpNotifier>,
    sources: &[Arc<dyn steward_core::retention::Dataset>],
) -> Requests<S> {
    sources.iter().fold(
        Requests::new(
            Arc::clone(ledger),
            Arc::clone(webhooks) as Arc<dyn Notifier>,
        ),
        |requests, source| {
            requests.with_source(Arc::clone(source) as Arc<dyn steward_core::requests::DataSource>)
        },
    )
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
            // Well formed but not issued here: a credential that does not prove anything.
            RequestError::Token(TokenError::Forged) => StatusCode::FORBIDDEN,
            RequestError::Token(_) => StatusCode::BAD_REQUEST,
            RequestError::NotOffered(..)
            | RequestError::PurposeNotApplicable(_)
            | RequestError::MethodNotOffered(..)
            | RequestError::NoExtension => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::Immutable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RequestError::NotFound
            | RequestError::UnknownRecipient(_)
            | RequestError::UnknownNotice => StatusCode::NOT_FOUND,
            RequestError::SecretShown { .. } => StatusCode::CONFLICT,
            RequestError::Delivery(_) | RequestError::Dataset(_) => StatusCode::BAD_GATEWAY,
            RequestError::WrongState { .. }
            | RequestError::UsedToken
            | RequestError::NotByCode
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
        if status == StatusCode::BAD_GATEWAY {
            tracing::warn!(target: "steward::requests", code = e.code(), cause = %e, "a delivery failed");
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(target: "steward::requests", code = e.code(), cause = %e, "a request could not be handled");
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
    let ip = crate::state::ip_text(state.guard.client(&headers, peer));
    let by_ip = Hit {
        limit: "request-ip",
        rate: state.guard.rates.request_ip,
        value: ip.as_bytes(),
    };
    if let Err(e) = limit(&state, &[by_ip], || access.entry("request.create", now)).await {
        return e.into_response();
    }
    let b = match body(json) {
        Ok(b) => b,
        Err(e) => {
            let entry = access.entry("request.create", now);
            return refuse(&state.vault, entry, e).await.into_response();
        }
    };
    // Counted under the address as Steward normalises it, so spellings of one address share
    // one budget.
    let email = Identity::parse(IdentityKind::Email, &b.email)
        .map_or_else(|_| b.email.trim().to_lowercase(), |i| i.value().to_owned());
    let by_email = Hit {
        limit: "request-email",
        rate: state.guard.rates.request_identity,
        value: email.as_bytes(),
    };
    if let Err(e) = limit(&state, &[by_email], || access.entry("request.create", now)).await {
        return e.into_response();
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
/// A link that no longer works (used, replaced, expired, altered) says so instead.
pub async fn verify_page<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    use crate::web::centre::message;
    let web = &state.web;
    let t = web.words(&headers);
    let Some(token) = query
        .ok()
        .and_then(|q| q.0.token)
        .filter(|t| steward_core::requests::looks_like_token(t))
    else {
        return message(
            web,
            &headers,
            StatusCode::BAD_REQUEST,
            "link.incomplete.title",
            t.s("link.incomplete"),
            None,
        );
    };
    if let Err(e) = state.requests.check_link(&token).await {
        let e = ApiError::from(e);
        return message(web, &headers, e.status(), "link.broken", e.message(), None);
    }
    message(
        web,
        &headers,
        StatusCode::OK,
        "request.confirm.title",
        t.s("request.confirm.text"),
        Some(("/requests/verify", &token, t.s("request.confirm.button"))),
    )
}

/// The per-address limit of the public request endpoints (`request-ip`), for a link followed:
/// each attempt, right or wrong, may write to the audit, so anonymous callers cannot fill it.
async fn limit_link<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    action: &'static str,
) -> Result<(), ApiError> {
    let now = state.vault.clock().now();
    let ip = crate::state::ip_text(state.guard.client(headers, peer));
    let by_ip = Hit {
        limit: "request-ip",
        rate: state.guard.rates.request_ip,
        value: ip.as_bytes(),
    };
    limit(state, &[by_ip], || person().entry(action, now)).await
}

/// A link's token, from the query or a posted form.
fn posted_token(query: Result<Query<TokenQuery>, QueryRejection>, form: &[u8]) -> String {
    query
        .ok()
        .and_then(|q| q.0.token)
        .or_else(|| form_urlencoded(form, "token"))
        .unwrap_or_default()
}

/// Whether the caller asked for JSON (a program) rather than a page (a person).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /requests/verify` with the token in the query or the form: verifies the request.
/// Answers JSON when asked for it.
pub async fn verify_link<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    query: Result<Query<TokenQuery>, QueryRejection>,
    form: axum::body::Bytes,
) -> Response {
    let token = posted_token(query, &form);
    let wants_json = wants_json(&headers);
    if let Err(e) = limit_link(&state, &headers, peer, "request.verify").await {
        return e.into_response();
    }
    let result = state.requests.verify_link(&token).await;
    match (result, wants_json) {
        (Ok(view), true) => Json(public_view(&view)).into_response(),
        // A person in a browser goes on to "My data", signed in by the verification — only
        // when the button on this site was pressed: a form elsewhere must not sign a browser
        // in to someone else's data.
        (Ok(view), false) if crate::web::same_site(&headers) => {
            crate::web::centre::open_session(&state, &state.web, view.id).await
        }
        (Ok(_), false) => {
            let t = state.web.words(&headers);
            crate::web::centre::message(
                &state.web,
                &headers,
                StatusCode::OK,
                "request.confirmed.title",
                t.s("request.confirmed.text"),
                None,
            )
        }
        (Err(e), true) => ApiError::from(e).into_response(),
        (Err(e), false) => {
            let e = ApiError::from(e);
            crate::web::centre::message(
                &state.web,
                &headers,
                e.status(),
                "link.broken",
                e.message(),
                None,
            )
        }
    }
}

/// `GET /requests/{id}/notifications/{recipient}/ack?token=`: the page a recipient told by
/// e-mail opens; it changes nothing (mail scanners follow links) and asks for a button press.
pub async fn ack_page<S: Store>(
    State(state): State<ApiState<S>>,
    Path((id, recipient)): Path<(String, String)>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|q| q.0.token).unwrap_or_default();
    let checked = Uuid::parse_str(&id)
        .map_err(|_| RequestError::UnknownNotice)
        .and_then(|id| state.requests.check_ack_link(id, &recipient, &token));
    if let Err(e) = checked {
        let e = ApiError::from(e);
        return page(e.status(), "This link does not work", e.message(), None);
    }
    page(
        StatusCode::OK,
        "Confirm you acted on this notice",
        "Press the button once you have applied the same change (correction, erasure or restriction) to the data you hold on this person.",
        Some((
            &format!("/requests/{id}/notifications/{recipient}/ack"),
            &token,
            "We have applied it",
        )),
    )
}

/// `POST /requests/{id}/notifications/{recipient}/ack` with the token in the query or the
/// form: the recipient acknowledges its Art. 19 notice. Answers JSON when asked for it (a
/// webhook receiver), else a page.
pub async fn ack_link<S: Store>(
    State(state): State<ApiState<S>>,
    Path((id, recipient)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    form: axum::body::Bytes,
) -> Response {
    let token = posted_token(query, &form);
    let wants_json = wants_json(&headers);
    let result = match Uuid::parse_str(&id) {
        Ok(id) => {
            state
                .requests
                .acknowledge_by_link(id, &recipient, &token)
                .await
        }
        Err(_) => Err(RequestError::UnknownNotice),
    };
    match (result, wants_json) {
        (Ok(ack), true) => Json(ack).into_response(),
        (Ok(_), false) => page(
            StatusCode::OK,
            "Thank you",
            "Your confirmation is recorded with the request.",
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
    let ip = crate::state::ip_text(state.guard.client(&headers, peer));
    let by_ip = Hit {
        limit: "request-ip",
        rate: state.guard.rates.request_ip,
        value: ip.as_bytes(),
    };
    if let Err(e) = limit(&state, &[by_ip], || person().entry("request.verify", now)).await {
        return e.into_response();
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
    headers: HeaderMap,
    Peer(peer): Peer,
    Path(id): Path<String>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    if let Err(e) = limit_link(&state, &headers, peer, "request.download").await {
        return e.into_response();
    }
    let token = query.ok().and_then(|q| q.0.token).unwrap_or_default();
    let result = async {
        let id = request_id(&id)?;
        let req = state.requests.open_download(id, &token).await?;
        let access = steward_core::requests::holder();
        let verified = state.requests.verified_identity(&req)?;
        Ok::<_, ApiError>(
            state
                .requests
                .gather(&access, Some(id), req.subject, &verified)
                .await?,
        )
    }
    .await;
    let data = match result {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    zip_response(Arc::clone(&state.vault), data, &format!("my-data-{id}.zip"))
}

/// The access package of `data`, streamed as a ZIP download named `filename` (written on a
/// blocking thread a chunk at a time; a slow reader slows the writer).
pub fn zip_response<S: Store>(
    vault: Arc<steward_core::Vault<S>>,
    data: steward_core::requests::AccessData,
    filename: &str,
) -> Response {
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
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `POST /v1/requests`. A caller who may look people up learns whom the address belongs to,
/// so the look-up limits apply to it; nobody else learns it.
pub async fn create<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Peer(peer): Peer,
    headers: HeaderMap,
    json: Result<Json<IntakeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (intake, vouch) = match body(json) {
        Ok(b) => b.intake(),
        Err(e) => {
            let entry = access.entry("request.create", state.vault.clock().now());
            return Err(refuse(&state.vault, entry, e).await);
        }
    };
    if let Ok(identity) = Identity::parse(IdentityKind::Email, &intake.email) {
        // Whoever may look people up learns the subject: that is a look-up.
        if Requests::<S>::may_look_up(&access) {
            crate::state::limit_lookup(&state, &access, &headers, peer, &identity).await?;
        }
        // Each request mails the address (a verification, a receipt): as many per address as
        // the public form allows, whoever asks.
        let by_email = Hit {
            limit: "request-email",
            rate: state.guard.rates.request_identity,
            value: identity.value().as_bytes(),
        };
        let now = state.vault.clock().now();
        limit(&state, &[by_email], || access.entry("request.create", now)).await?;
    }
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
        if filter.statuses.is_empty() {
            return Err(bad(
                "`status` names at least one status, or `open`; leave it out for all".into(),
            ));
        }
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("`limit` is 1 to 1000".into()));
    }
    let views = state
        .requests
        .list(&access, filter, q.overdue, limit)
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
