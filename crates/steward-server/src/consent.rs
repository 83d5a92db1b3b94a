//! Consent over HTTP: the API the operator's application calls (record an event, ask a permit,
//! a subject's history and proof, the unsubscribe headers for a marketing mail) and the public
//! side people reach from a browser or a mail client (`/consent.js` and its endpoint, the
//! confirmation, unsubscribe and acceptance links, `/.well-known/gpc.json`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use steward_core::consent::{Action, DeviceId, Evidence, MAX_USER_AGENT, Method, Party, Signal};
use steward_core::ledger::{ConsentError, Ledger, LinkOutcome, Record};
use steward_core::permit::Decision;
use steward_core::rate_limit::Hit;
use steward_core::{Access, Store};
use steward_policy::Declaration;
use steward_policy::declaration::{CookieCategory, LawfulBasis};

use crate::error::{ApiError, body, refuse, subject_id};
use crate::state::{ApiState, Peer};

/// The most permit questions in one batch.
pub const MAX_BATCH: usize = 1000;
/// The largest body `/consent/choices` takes.
const MAX_CHOICES_BODY: usize = 16 * 1024;

/// The body limit of `/consent/choices`: a byte more than it takes, so that a larger body is
/// refused (and audited) by the handler after reading no more than that.
pub fn choices_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(MAX_CHOICES_BODY + 1)
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> Self {
        if let ConsentError::Vault(v) = e {
            return v.into();
        }
        let status = match &e {
            ConsentError::UnknownPurpose(_)
            | ConsentError::NotConsent { .. }
            | ConsentError::NotObjectable { .. }
            | ConsentError::Shape(_)
            | ConsentError::NeedsEmail(_)
            | ConsentError::UnknownVersion(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsentError::EvidenceTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ConsentError::UnknownSubject => StatusCode::NOT_FOUND,
            ConsentError::Token(steward_core::consent::TokenError::Expired) => StatusCode::GONE,
            // Well formed but not issued here: a credential that does not prove anything.
            ConsentError::Token(steward_core::consent::TokenError::Forged) => StatusCode::FORBIDDEN,
            ConsentError::Token(_) => StatusCode::BAD_REQUEST,
            ConsentError::Replayed => StatusCode::CONFLICT,
            ConsentError::Denied(_) => StatusCode::FORBIDDEN,
            ConsentError::Vault(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ConsentError::Mail(_) => StatusCode::BAD_GATEWAY,
            ConsentError::TermsChanged(_) | ConsentError::Store(_) | ConsentError::Broken(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match status {
            StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(target: "steward::consent", code = e.code(), cause = %e, "the consent ledger failed");
                "the consent ledger failed; the operator's logs say why".to_owned()
            }
            StatusCode::BAD_GATEWAY => {
                tracing::warn!(target: "steward::mail", code = e.code(), cause = %e, "a consent mail could not be sent");
                "the event is recorded, but the mail could not be sent; the operator's logs say why"
                    .to_owned()
            }
            _ => e.to_string(),
        };
        Self::new(status, e.code(), message)
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The evidence a request carries: the keyed hash of the client address and the user agent.
fn evidence<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    notice: Option<String>,
) -> Result<Evidence, ApiError> {
    let ip = state.guard.client(headers, peer);
    let user_agent = header_text(headers, "user-agent").map(str::to_owned);
    if let Some(ua) = &user_agent
        && ua.chars().count() > MAX_USER_AGENT
    {
        return Err(ConsentError::EvidenceTooLarge {
            field: "user_agent",
            len: ua.chars().count(),
            max: MAX_USER_AGENT,
        }
        .into());
    }
    Ok(Evidence {
        notice,
        ip: Some(state.ledger.tokens().ip_hash(&ip.to_string())),
        user_agent,
    })
}

/// The opt-out signals a request carries.
fn signals(headers: &HeaderMap) -> Vec<Signal> {
    let mut out = Vec::new();
    if header_text(headers, "sec-gpc").map(str::trim) == Some("1") {
        out.push(Signal::Gpc);
    }
    if header_text(headers, "dnt").map(str::trim) == Some("1") {
        out.push(Signal::Dnt);
    }
    out
}

fn party<S: Store>(
    ledger: &Ledger<S>,
    subject: Option<&str>,
    device: Option<&str>,
) -> Result<Party, ApiError> {
    match (subject, device) {
        (Some(s), None) => Ok(Party::Subject(subject_id(s)?)),
        (None, Some(d)) => match ledger.device(d) {
            Ok(device) => Ok(Party::Device(device)),
            // A device id is no link: say what it should be rather than how to follow a link.
            Err(steward_core::consent::TokenError::Forged) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forged-token",
                "`device` is not a device id this Steward issued: take the one consent.js keeps (`StewardConsent.device()`)",
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                e.code(),
                "`device` is not a device id: consent.js issues them as `dv1.` and 35 letters and digits (`StewardConsent.device()`)",
            )),
        },
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-party",
            "name exactly one of `subject` (a subject id) or `device` (a device id from consent.js)",
        )),
    }
}

/// `POST /v1/consent` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    /// The subject.
    pub subject: Option<String>,
    /// Or the browser.
    pub device: Option<String>,
    /// What happened.
    pub action: Action,
    /// The purpose.
    pub purpose: Option<String>,
    /// The signal, for `signal`.
    pub signal: Option<Signal>,
    /// The subject a device is linked to, for `link`.
    pub link: Option<String>,
    /// The policy version accepted, for `accept`.
    pub version: Option<String>,
    /// How it was given (default `api`).
    pub method: Option<Method>,
    /// The notice revision shown.
    pub notice: Option<String>,
    /// The person's user agent, when the operator's server records on their behalf.
    pub user_agent: Option<String>,
    /// The person's address, when the operator's server records on their behalf (kept only as
    /// a keyed hash).
    pub ip: Option<String>,
}

/// Records a consent event.
pub async fn record<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    Peer(peer): Peer,
    json: Result<Json<RecordBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = match body(json) {
        Ok(b) => b,
        Err(e) => {
            let entry = access.entry("consent.record", state.vault.clock().now());
            return Err(refuse(&state.vault, entry, e).await);
        }
    };
    let ledger = &state.ledger;
    let refused = |e: ApiError| async {
        let entry = access.entry(&format!("consent.{}", b.action), state.vault.clock().now());
        refuse(&state.vault, entry, e).await
    };
    let party = match party(ledger, b.subject.as_deref(), b.device.as_deref()) {
        Ok(p) => p,
        Err(e) => return Err(refused(e).await),
    };
    let link = match b.link.as_deref().map(subject_id).transpose() {
        Ok(l) => l,
        Err(e) => return Err(refused(e).await),
    };
    let mut evidence = match evidence(&state, &headers, peer, b.notice.clone()) {
        Ok(e) => e,
        Err(e) => return Err(refused(e).await),
    };
    if let Some(ip) = &b.ip {
        let Ok(ip) = ip.trim().parse::<std::net::IpAddr>() else {
            return Err(refused(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-event",
                "`ip` is the person's IPv4 or IPv6 address, such as 203.0.113.7",
            ))
            .await);
        };
        evidence.ip = Some(ledger.tokens().ip_hash(&ip.to_string()));
    }
    if b.user_agent.is_some() {
        evidence.user_agent.clone_from(&b.user_agent);
    }
    let recorded = ledger
        .record(
            &access,
            Record {
                party,
                action: b.action,
                purpose: b.purpose,
                signal: b.signal,
                link,
                version: b.version,
                method: b.method.unwrap_or(Method::Api),
                evidence,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// `GET /v1/permits` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitQuery {
    /// The subject.
    pub subject: Option<String>,
    /// Or the browser.
    pub device: Option<String>,
    /// The purpose.
    pub purpose: String,
}

fn answer(purpose: &str, d: Decision) -> serde_json::Value {
    json!({ "purpose": purpose, "allowed": d.allowed, "reason": d.reason.code() })
}

/// Answers one question: the party read (and checked) from its text, the caller's scope
/// checked for the purpose, then the decision.
fn ask<S: Store>(
    ledger: &Ledger<S>,
    access: &Access,
    subject: Option<&str>,
    device: Option<&str>,
    purpose: &str,
) -> Result<Decision, ApiError> {
    let party = party(ledger, subject, device)?;
    if let Some(p) = ledger.vault().declaration().purpose(purpose) {
        access
            .authorize(
                steward_core::Operation::Permit,
                steward_core::Reach::Data {
                    purposes: &[p],
                    categories: &[],
                },
            )
            .map_err(|d| ApiError::new(StatusCode::FORBIDDEN, d.code, d.message))?;
    }
    Ok(ledger.permit(&party, purpose)?)
}

fn may_ask(access: &Access) -> Result<(), ApiError> {
    access
        .authorize(
            steward_core::Operation::Permit,
            steward_core::access::Reach::Nothing,
        )
        .map_err(|d| ApiError::new(StatusCode::FORBIDDEN, d.code, d.message))
}

/// Answers one permit question.
pub async fn permit<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    query: Result<Query<PermitQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let refuse_with = |e: ApiError| async {
        let entry = access.entry("permit", state.vault.clock().now());
        refuse(&state.vault, entry, e).await
    };
    if let Err(e) = may_ask(&access) {
        return Err(refuse_with(e).await);
    }
    let Ok(Query(q)) = query else {
        return Err(refuse_with(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "ask `?subject=<subject id>&purpose=<purpose id>` or `?device=<device id>&purpose=<purpose id>`",
        ))
        .await);
    };
    match ask(
        &state.ledger,
        &access,
        q.subject.as_deref(),
        q.device.as_deref(),
        &q.purpose,
    ) {
        Ok(d) => {
            state.metrics.permit(d.reason.code());
            Ok(Json(answer(&q.purpose, d)).into_response())
        }
        Err(e) => Err(refuse_with(e).await),
    }
}

/// One question in a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The subject.
    pub subject: Option<String>,
    /// Or the browser.
    pub device: Option<String>,
    /// The purpose.
    pub purpose: String,
}

/// `POST /v1/permits` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Up to 1,000 questions.
    pub questions: Vec<Question>,
}

/// Answers up to 1,000 permit questions at once, in order.
pub async fn permits<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<BatchBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let refuse_with = |e: ApiError| async {
        let entry = access.entry("permit", state.vault.clock().now());
        refuse(&state.vault, entry, e).await
    };
    if let Err(e) = may_ask(&access) {
        return Err(refuse_with(e).await);
    }
    let b = match body(json) {
        Ok(b) => b,
        Err(e) => return Err(refuse_with(e).await),
    };
    if b.questions.len() > MAX_BATCH {
        return Err(refuse_with(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch-too-large",
            format!(
                "{} questions; ask at most {MAX_BATCH} per call",
                b.questions.len()
            ),
        ))
        .await);
    }
    let mut answers = Vec::with_capacity(b.questions.len());
    for (i, q) in b.questions.iter().enumerate() {
        match ask(
            &state.ledger,
            &access,
            q.subject.as_deref(),
            q.device.as_deref(),
            &q.purpose,
        ) {
            Ok(d) => {
                state.metrics.permit(d.reason.code());
                answers.push(answer(&q.purpose, d));
            }
            Err(e) => {
                let e = ApiError::new(
                    e.status(),
                    e.code(),
                    format!("question {i}: {}", e.message()),
                );
                return Err(refuse_with(e).await);
            }
        }
    }
    Ok(Json(json!({ "answers": answers })).into_response())
}

/// A subject's consent history.
pub async fn history<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    Ok(Json(state.ledger.history(&access, id).await?).into_response())
}

/// The proof-of-consent export.
pub async fn proof<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let proof = state.ledger.proof(&access, id).await?;
    let mut response = Json(proof).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"consent-proof-{id}.json\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /v1/subjects/{id}/unsubscribe` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeQuery {
    /// The marketing purpose the message is sent for.
    pub purpose: String,
}

/// The unsubscribe link and RFC 8058 headers for a marketing message.
pub async fn unsubscribe_headers<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    query: Result<Query<UnsubscribeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let Ok(Query(q)) = query else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "name the purpose the message is sent for: `?purpose=<purpose id>`",
        ));
    };
    Ok(Json(
        state
            .ledger
            .unsubscribe_headers(&access, id, &q.purpose)
            .await?,
    )
    .into_response())
}

/// Verifies the whole ledger.
pub async fn verify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    let mut entry = access.entry("consent.verify", state.vault.clock().now());
    if let Err(d) = access.authorize(
        steward_core::Operation::Audit,
        steward_core::access::Reach::Nothing,
    ) {
        let e = ApiError::new(StatusCode::FORBIDDEN, d.code, d.message);
        return Err(refuse(&state.vault, entry, e).await);
    }
    let result = state.ledger.verify(|_| {}).await;
    entry.detail = Some(match &result {
        Ok(n) => format!("{n} events intact"),
        Err(e) => e.code().to_owned(),
    });
    state.vault.record(entry).await?;
    Ok(match result {
        Ok(n) => Json(json!({ "intact": true, "events": n })).into_response(),
        Err(ConsentError::Broken(b)) => (
            StatusCode::OK,
            Json(json!({ "intact": false, "break": b.to_string() })),
        )
            .into_response(),
        Err(e) => return Err(e.into()),
    })
}

// ---- The public side ------------------------------------------------------------------------

/// The configuration consent.js is built with.
pub fn script(declaration: &Declaration, public_url: &str) -> String {
    let purposes: Vec<serde_json::Value> = declaration
        .purposes
        .iter()
        .filter(|p| p.basis == LawfulBasis::Consent)
        .filter_map(|p| {
            let cookies: Vec<&str> = declaration
                .cookies
                .iter()
                .filter(|c| c.purpose.as_deref() == Some(p.id.as_str()))
                .map(|c| c.name.as_str())
                .collect();
            let embedded = declaration
                .embeds
                .iter()
                .any(|e| e.purpose.as_deref() == Some(p.id.as_str()));
            if cookies.is_empty() && !embedded {
                return None;
            }
            let data_use = p.data_use.as_str();
            Some(json!({
                "id": p.id,
                "name": p.name,
                "description": p.description.clone().unwrap_or_default(),
                "cookies": cookies,
                "gpc": p.sale || p.share,
                "dnt": data_use.starts_with("analytics")
                    || data_use.starts_with("marketing.advertising")
                    || data_use.starts_with("personalize"),
            }))
        })
        .collect();
    let necessary: Vec<&str> = declaration
        .cookies
        .iter()
        .filter(|c| c.category == CookieCategory::Necessary)
        .map(|c| c.name.as_str())
        .collect();
    let config = json!({
        "revision": declaration.policy.version,
        "language": declaration.policy.language,
        "gpc": declaration.signals.gpc,
        "dnt": declaration.signals.dnt,
        "policy_url": declaration.policy.url.clone().unwrap_or_else(|| format!("{public_url}/privacy")),
        "purposes": purposes,
        "necessary": necessary,
    });
    // `</` never appears inside the JSON (serde escapes nothing of it, so guard it here).
    let config = config.to_string().replace("</", "<\\/");
    include_str!("consent.js").replacen("/*CONFIG*/ {}", &config, 1)
}

fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// `OPTIONS` for the public consent endpoints.
pub async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

/// `/consent.js`.
pub async fn consent_js(State(script): State<std::sync::Arc<String>>) -> Response {
    cors(
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/javascript; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            script.as_str().to_owned(),
        )
            .into_response(),
    )
}

/// `/consent/choices` body, as consent.js sends it (as `text/plain`, so no preflight).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoicesBody {
    /// The browser's device id, absent on its first visit.
    pub device: Option<String>,
    /// The revision of the banner shown.
    pub revision: String,
    /// `purpose → allowed`.
    #[serde(default)]
    pub choices: BTreeMap<String, bool>,
    /// `navigator.globalPrivacyControl`.
    #[serde(default)]
    pub gpc: bool,
    /// `navigator.doNotTrack`.
    #[serde(default)]
    pub dnt: bool,
}

/// Records a browser's choices and signals; issues its device id on the first visit.
pub async fn choices<S: Store>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    raw: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // The route reads at most MAX_CHOICES_BODY + 1 bytes (`choices_limit`): one byte more
    // than allowed is enough to refuse, and an anonymous caller cannot make it buffer more.
    let raw = match raw {
        Ok(raw) => Ok(raw),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(MAX_CHOICES_BODY + 1),
        Err(_) => Ok(Bytes::new()),
    };
    cors(match choices_inner(&state, &headers, peer, raw).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    })
}

async fn choices_inner<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    raw: Result<Bytes, usize>,
) -> Result<Response, ApiError> {
    let now = state.vault.clock().now();
    let access = steward_core::ledger::public("banner");
    let ip = crate::state::ip_text(state.guard.client(headers, peer));
    let hit = Hit {
        limit: "consent-ip",
        rate: state.guard.rates.consent_ip,
        value: ip.as_bytes(),
    };
    crate::state::limit(state, &[hit], || access.entry("consent.choices", now)).await?;
    let fail = |code: &'static str, message: String| {
        let entry = access.entry("consent.choices", now);
        let e = ApiError::new(StatusCode::BAD_REQUEST, code, message);
        async move { refuse(&state.vault, entry, e).await }
    };
    let raw = match raw {
        Ok(raw) if raw.len() <= MAX_CHOICES_BODY => raw,
        _ => {
            let entry = access.entry("consent.choices", now);
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "evidence-too-large",
                format!("the body is larger than {MAX_CHOICES_BODY} bytes"),
            );
            return Err(refuse(&state.vault, entry, e).await);
        }
    };
    let raw = &raw[..];
    let Ok(b) = serde_json::from_slice::<ChoicesBody>(raw) else {
        return Err(fail(
            "invalid-body",
            "the body is not consent.js's JSON ({\"device\", \"revision\", \"choices\", \"gpc\", \"dnt\"})".to_owned(),
        )
        .await);
    };
    let ledger = &state.ledger;
    let (device, text) = match &b.device {
        Some(d) => match ledger.device(d) {
            Ok(id) => (id, d.clone()),
            Err(e) => {
                let entry = access.entry("consent.choices", now);
                return Err(refuse(&state.vault, entry, ConsentError::from(e).into()).await);
            }
        },
        None => issue(ledger)?,
    };
    let evidence = evidence(state, headers, peer, Some(b.revision.clone()))?;
    let mut signals = signals(headers);
    if b.gpc && !signals.contains(&Signal::Gpc) {
        signals.push(Signal::Gpc);
    }
    if b.dnt && !signals.contains(&Signal::Dnt) {
        signals.push(Signal::Dnt);
    }
    ledger.observe(device, &signals, evidence.clone()).await?;
    let choices: Vec<(String, bool)> = b.choices.into_iter().collect();
    ledger.choose(device, &choices, evidence).await?;
    let party = Party::Device(device);
    let permits: BTreeMap<String, serde_json::Value> = choices
        .iter()
        .filter_map(|(p, _)| {
            let d = ledger.permit(&party, p).ok()?;
            Some((
                p.clone(),
                json!({ "allowed": d.allowed, "reason": d.reason.code() }),
            ))
        })
        .collect();
    Ok(Json(json!({ "device": text, "permits": permits })).into_response())
}

fn issue<S: Store>(ledger: &Ledger<S>) -> Result<(DeviceId, String), ApiError> {
    ledger.tokens().issue_device().map_err(|e| {
        tracing::error!(target: "steward::consent", cause = %e, "no randomness for a device id");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no randomness for a device id",
        )
    })
}

/// `/.well-known/gpc.json` (the GPC specification's support resource).
pub async fn gpc_json(State(gpc): State<(bool, String)>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({ "gpc": gpc.0, "lastUpdate": gpc.1 }).to_string(),
    )
        .into_response()
}

/// `?token=` on the link pages.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// The signed token.
    pub token: Option<String>,
}

const PAGE_STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#111}button{font:inherit;padding:.5rem 1rem;background:#1b4d89;color:#fff;border:0;border-radius:4px;cursor:pointer}";

/// A small page for a link someone followed: a title, a sentence and, optionally, a form with
/// one button that posts the token to `action`.
pub(crate) fn page(
    status: StatusCode,
    title: &str,
    text: &str,
    form: Option<(&str, &str, &str)>,
) -> Response {
    use steward_policy::notice::escape as esc;
    let form = form.map_or(String::new(), |(action, token, label)| {
        format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\">{}</button></form>",
            esc(action),
            esc(token),
            esc(label)
        )
    });
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><style>{PAGE_STYLE}</style></head><body><h1>{t}</h1><p>{x}</p>{form}</body></html>",
        t = esc(title),
        x = esc(text)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&crate::content_security_policy(PAGE_STYLE)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn link_error(e: ConsentError) -> Response {
    let api = ApiError::from(e);
    page(api.status(), "This link does not work", api.message(), None)
}

/// What a link page does.
#[derive(Debug, Clone, Copy)]
pub enum LinkKind {
    /// Confirms a double opt-in.
    Confirm,
    /// Unsubscribes.
    Unsubscribe,
    /// Accepts a policy version.
    Accept,
}

impl LinkKind {
    fn path(self) -> &'static str {
        match self {
            Self::Confirm => "/consent/confirm",
            Self::Unsubscribe => "/consent/unsubscribe",
            Self::Accept => "/consent/accept",
        }
    }
    fn ask(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Confirm => (
                "Confirm your subscription",
                "Press the button to confirm that you want to receive these messages.",
                "Confirm",
            ),
            Self::Unsubscribe => (
                "Unsubscribe",
                "Press the button to stop receiving these messages.",
                "Unsubscribe",
            ),
            Self::Accept => (
                "Accept the privacy policy",
                "Press the button to accept the updated privacy policy.",
                "I accept",
            ),
        }
    }
    fn done(self, outcome: LinkOutcome) -> (&'static str, &'static str) {
        match (self, outcome) {
            (Self::Confirm, LinkOutcome::Done) => {
                ("Confirmed", "Thank you: your subscription is confirmed.")
            }
            (Self::Confirm, LinkOutcome::AlreadyDone) => (
                "Already confirmed",
                "Your subscription was already confirmed.",
            ),
            (Self::Unsubscribe, LinkOutcome::Done) => (
                "Unsubscribed",
                "You will not receive these messages any more.",
            ),
            (Self::Unsubscribe, LinkOutcome::AlreadyDone) => (
                "Already unsubscribed",
                "You had already unsubscribed: you will not receive these messages.",
            ),
            (Self::Accept, LinkOutcome::Done) => {
                ("Accepted", "Thank you: your acceptance is recorded.")
            }
            (Self::Accept, LinkOutcome::AlreadyDone) => {
                ("Already accepted", "Your acceptance was already recorded.")
            }
        }
    }
}

/// `GET` on a link: a page with one button (mail scanners that follow links change nothing).
pub async fn link_page(
    kind: LinkKind,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let Some(token) = query.ok().and_then(|Query(q)| q.token) else {
        return link_error(ConsentError::Token(
            steward_core::consent::TokenError::Malformed,
        ));
    };
    let (title, text, button) = kind.ask();
    page(
        StatusCode::OK,
        title,
        text,
        Some((kind.path(), &token, button)),
    )
}

/// `POST` on a link: the change itself. Takes the token from the query (RFC 8058 one-click
/// posts `List-Unsubscribe=One-Click` to the URL as sent) or from the form.
pub async fn link_post<S: Store>(
    state: ApiState<S>,
    kind: LinkKind,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    query: Option<String>,
    form: Bytes,
) -> Response {
    let from_form = form_urlencoded(&form, "token");
    let Some(token) = query.or(from_form) else {
        return link_error(ConsentError::Token(
            steward_core::consent::TokenError::Malformed,
        ));
    };
    let evidence = match evidence(&state, &headers, peer, None) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let ledger = &state.ledger;
    let result = match kind {
        LinkKind::Confirm => ledger.confirm(&token, evidence).await,
        LinkKind::Unsubscribe => ledger.unsubscribe(&token, evidence).await,
        LinkKind::Accept => ledger.accept(&token, evidence).await,
    };
    match result {
        Ok(outcome) => {
            let (title, text) = kind.done(outcome);
            page(StatusCode::OK, title, text, None)
        }
        Err(e) => link_error(e),
    }
}

/// The first value of `name` in a form-encoded body.
pub(crate) fn form_urlencoded(body: &[u8], name: &str) -> Option<String> {
    crate::web::Form::parse(body)
        .0
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}
