//! The vault's HTTP API, `/v1/…`: create a subject, look one up by identity, read it for a
//! declared purpose, rectify a field, export or erase it, and read or verify the audit trail.
//!
//! Every call carries an API key (`Authorization: Bearer stw_…`) or a staff session (cookie
//! and, for changes, a CSRF token). The key's role and scope bound what it may do; the vault
//! checks every access and writes its audit entry, allowed or refused. No personal data
//! travels in a URL: identities go in request bodies, reads name their purpose in the
//! `Steward-Purpose` header, and support staff name their ticket in `Steward-Reason`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use steward_core::api_key::prefix_of;
use steward_core::audit::{self, AuditEntry, AuditFilter, Outcome};
use steward_core::rate_limit::RateLimiter;
use steward_core::staff::StaffError;
use steward_core::{
    Access, FieldSource, Identity, IdentityKind, NewSubjectInput, Operation, Role, Store,
    SubjectId, Vault, VaultError,
};
use uuid::Uuid;

/// What the API handlers share.
pub struct ApiState<S: Store> {
    /// The vault.
    pub vault: Arc<Vault<S>>,
    /// The consent ledger.
    pub ledger: Arc<steward_core::ledger::Ledger<S>>,
    /// Rate limits and how client addresses are read.
    pub guard: Arc<Guard>,
    /// The data-subject request workflow.
    pub requests: Arc<steward_core::requests::Requests<S>>,
}

impl<S: Store> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        Self {
            vault: Arc::clone(&self.vault),
            ledger: Arc::clone(&self.ledger),
            guard: Arc::clone(&self.guard),
            requests: Arc::clone(&self.requests),
        }
    }
}

/// Rate limits on what could enumerate people, and whether to believe `X-Forwarded-For`.
#[derive(Debug)]
pub struct Guard {
    /// Look-ups per client address.
    pub lookup_ip: RateLimiter<IpAddr>,
    /// Look-ups per identity (keyed by a salted hash, never the value).
    pub lookup_identity: RateLimiter<[u8; 32]>,
    /// Sign-in attempts per client address.
    pub signin_ip: RateLimiter<IpAddr>,
    /// Sign-in attempts per username (known or not, so both answer alike).
    pub signin_user: RateLimiter<[u8; 32]>,
    /// Banner choices per client address (each may write ledger events).
    pub consent_ip: RateLimiter<IpAddr>,
    /// Requests and verification codes per client address.
    pub request_ip: RateLimiter<IpAddr>,
    /// Requests per e-mail address (keyed by a salted hash, never the value).
    pub request_identity: RateLimiter<[u8; 32]>,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded: bool,
    salt: [u8; 32],
}

/// The rates, as `steward serve` reads them.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Look-ups per client address.
    pub lookup_ip: (u32, time::Duration),
    /// Look-ups per identity.
    pub lookup_identity: (u32, time::Duration),
    /// Sign-ins per client address.
    pub signin_ip: (u32, time::Duration),
    /// Sign-ins per username.
    pub signin_user: (u32, time::Duration),
    /// Banner choices per client address.
    pub consent_ip: (u32, time::Duration),
    /// Public requests and code attempts per client address.
    pub request_ip: (u32, time::Duration),
    /// Public requests per e-mail address.
    pub request_identity: (u32, time::Duration),
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            lookup_ip: (600, time::Duration::MINUTE),
            lookup_identity: (30, time::Duration::MINUTE),
            signin_ip: (30, time::Duration::MINUTE),
            signin_user: (10, time::Duration::MINUTE),
            consent_ip: (120, time::Duration::MINUTE),
            request_ip: (20, time::Duration::MINUTE),
            request_identity: (5, time::Duration::HOUR),
        }
    }
}

impl Guard {
    /// Limits at `rates`.
    pub fn new(rates: Rates, trust_forwarded: bool) -> Self {
        let mut salt = [0u8; 32];
        // Without randomness the salt stays zero: the keys are then plain SHA-256, still never
        // the value itself.
        let _ = steward_crypto::random_bytes(&mut salt);
        Self {
            lookup_ip: RateLimiter::new(rates.lookup_ip.0, rates.lookup_ip.1),
            lookup_identity: RateLimiter::new(rates.lookup_identity.0, rates.lookup_identity.1),
            signin_ip: RateLimiter::new(rates.signin_ip.0, rates.signin_ip.1),
            signin_user: RateLimiter::new(rates.signin_user.0, rates.signin_user.1),
            consent_ip: RateLimiter::new(rates.consent_ip.0, rates.consent_ip.1),
            request_ip: RateLimiter::new(rates.request_ip.0, rates.request_ip.1),
            request_identity: RateLimiter::new(rates.request_identity.0, rates.request_identity.1),
            trust_forwarded,
            salt,
        }
    }

    /// A salted hash standing for a personal value in a limiter's table.
    pub fn key(&self, kind: &str, value: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        h.finalize().into()
    }

    /// The client's address.
    pub fn client(&self, request: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        if self.trust_forwarded
            && let Some(ip) = request
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip())
    }
}

/// An API error: a status, a stable code and a message that says what to do. Never holds a
/// personal value.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 429 that says when to come back.
    pub fn too_many(wait: time::Duration) -> Self {
        let secs = u64::try_from(wait.whole_seconds()).unwrap_or(0) + 1;
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many attempts; try again in {secs} s"),
            )
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let status = match &e {
            VaultError::Identity(_)
            | VaultError::NoIdentity
            | VaultError::UnknownPurpose(_)
            | VaultError::UnknownCategory(_)
            | VaultError::NotCollected { .. }
            | VaultError::NotStored(_)
            | VaultError::UnknownSource(_) => StatusCode::UNPROCESSABLE_ENTITY,
            VaultError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            VaultError::Immutable(_) | VaultError::Duplicate { .. } => StatusCode::CONFLICT,
            VaultError::NotFound => StatusCode::NOT_FOUND,
            VaultError::Denied(_) => StatusCode::FORBIDDEN,
            VaultError::Staff(e) => match e {
                StaffError::Username | StaffError::Password(_) => StatusCode::UNPROCESSABLE_ENTITY,
                StaffError::Exists(_) => StatusCode::CONFLICT,
                StaffError::Unknown(_) => StatusCode::NOT_FOUND,
                StaffError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            VaultError::Crypto(_) | VaultError::Store(_) | VaultError::Audit(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "the vault failed; the operator's logs say why".to_owned()
        } else {
            e.to_string()
        };
        let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal"
        } else {
            e.code()
        };
        Self::new(status, code, message)
    }
}

pub(crate) fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(|rejection| {
        // serde's own messages can quote the values sent, so they are not passed on.
        let message = match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with `Content-Type: application/json`"
            }
            JsonRejection::JsonSyntaxError(_) => "the request body is not valid JSON",
            _ => "the request body does not match this endpoint's schema (see /openapi.json)",
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", message)
    })
}

pub(crate) fn subject_id(text: &str) -> Result<SubjectId, ApiError> {
    SubjectId::from_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-id",
            "a subject id is a UUID, as returned when the subject was created",
        )
    })
}

/// Writes the audit entry of a refusal made before the vault was reached, and returns the
/// error. If even that entry cannot be written, the answer is a 500.
pub async fn refuse<S: Store>(
    vault: &Vault<S>,
    mut entry: AuditEntry,
    error: ApiError,
) -> ApiError {
    entry.outcome = Outcome::Denied;
    entry.code = Some(error.code.to_owned());
    match vault.record(entry).await {
        Ok(_) => error,
        Err(e) => e.into(),
    }
}

fn unauthenticated(actor: String, request: Uuid, at: time::OffsetDateTime) -> AuditEntry {
    Access {
        principal: steward_core::Principal {
            actor,
            role: Role::Auditor,
            scope: steward_core::Scope::default(),
        },
        request,
        ticket: None,
    }
    .entry("auth", at)
}

/// Authenticates the caller (API key, or staff session with its CSRF token for changes),
/// reads the support ticket, and hands the handlers an [`Access`]. Every refusal is audited.
async fn authenticate<S: Store>(
    State(state): State<ApiState<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = state.vault.clock().now();
    let id = Uuid::new_v4();
    let (headers, method) = (request.headers().clone(), request.method().clone());
    let principal = match principal(&state, &headers, &method, now).await {
        Ok(p) => p,
        Err((actor, error)) => {
            let mut entry = unauthenticated(actor, id, now);
            entry.role = "none".to_owned();
            return with_request_id(refuse(&state.vault, entry, error).await.into_response(), id);
        }
    };
    let ticket = match request
        .headers()
        .get("steward-reason")
        .map(|v| v.to_str().ok().and_then(|t| audit::ticket(t).ok()))
    {
        None => None,
        Some(Some(t)) => Some(t.to_owned()),
        Some(None) => {
            let access = Access::new(principal);
            let entry = access.entry("auth", now);
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-reason",
                audit::TicketError.to_string(),
            );
            return with_request_id(refuse(&state.vault, entry, error).await.into_response(), id);
        }
    };
    let access = Access {
        principal,
        request: id,
        ticket,
    };
    request.extensions_mut().insert(access);
    with_request_id(next.run(request).await, id)
}

fn with_request_id(mut response: Response, id: Uuid) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("steward-request-id", v);
    }
    response
}

/// Who is calling, or (the actor to audit, the refusal).
async fn principal<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    method: &axum::http::Method,
    now: time::OffsetDateTime,
) -> Result<steward_core::Principal, (String, ApiError)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = bearer else {
        return crate::session::principal(state, headers, method).await;
    };
    let invalid = |actor: String| {
        (
            actor,
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-key",
                "this API key is not valid",
            ),
        )
    };
    let Some(prefix) = prefix_of(presented) else {
        return Err(invalid("anonymous".to_owned()));
    };
    let actor = format!("key:{prefix}");
    match state.vault.store().find_api_key(prefix).await {
        Ok(Some(record)) => record.check(presented, now).map_err(|refused| {
            let error = ApiError::new(
                StatusCode::UNAUTHORIZED,
                refused.code(),
                refused.to_string(),
            );
            (actor.clone(), error)
        }),
        Ok(None) => Err(invalid(actor)),
        Err(_) => Err((
            actor,
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the key store failed",
            ),
        )),
    }
}

/// The API's routes over `state`.
pub fn router<S: Store>(state: ApiState<S>) -> Router {
    let authenticated = Router::new()
        .route("/v1/subjects", post(create::<S>))
        .route("/v1/subjects/lookup", post(lookup::<S>))
        .route("/v1/subjects/{id}", get(read::<S>).delete(erase::<S>))
        .route("/v1/subjects/{id}/fields", patch(rectify::<S>))
        .route("/v1/subjects/{id}/export", get(export::<S>))
        .route("/v1/audit", get(audit_entries::<S>))
        .route("/v1/audit/verify", get(audit_verify::<S>))
        .route("/v1/consent", post(crate::consent::record::<S>))
        .route("/v1/consent/verify", get(crate::consent::verify::<S>))
        .route(
            "/v1/permits",
            get(crate::consent::permit::<S>).post(crate::consent::permits::<S>),
        )
        .route(
            "/v1/subjects/{id}/consent",
            get(crate::consent::history::<S>),
        )
        .route(
            "/v1/subjects/{id}/consent/proof",
            get(crate::consent::proof::<S>),
        )
        .route(
            "/v1/subjects/{id}/unsubscribe",
            get(crate::consent::unsubscribe_headers::<S>),
        )
        .route(
            "/v1/session",
            get(crate::session::current::<S>).delete(crate::session::sign_out::<S>),
        )
        .route(
            "/v1/requests",
            post(crate::requests::create::<S>).get(crate::requests::list::<S>),
        )
        .route("/v1/requests/{id}", get(crate::requests::show::<S>))
        .route(
            "/v1/requests/{id}/approve",
            post(crate::requests::approve::<S>),
        )
        .route("/v1/requests/{id}/deny", post(crate::requests::deny::<S>))
        .route(
            "/v1/requests/{id}/extend",
            post(crate::requests::extend::<S>),
        )
        .route(
            "/v1/requests/{id}/notifications/{recipient}/ack",
            post(crate::requests::acknowledge::<S>),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate::<S>,
        ));
    Router::new()
        .merge(authenticated)
        .route("/v1/session", post(crate::session::sign_in::<S>))
        .route("/requests", post(crate::requests::intake::<S>))
        .route(
            "/requests/verify",
            get(crate::requests::verify_page).post(crate::requests::verify_link::<S>),
        )
        .route(
            "/requests/{id}/verify",
            post(crate::requests::verify_code::<S>),
        )
        .route("/requests/{id}/package", get(crate::requests::package::<S>))
        .with_state(state)
}

/// An identity in a request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    /// `email`, `phone`, `username` or a custom kind.
    pub kind: String,
    /// The value.
    pub value: String,
}

impl IdentityBody {
    fn parse(&self) -> Result<Identity, ApiError> {
        let kind = IdentityKind::parse(&self.kind).map_err(VaultError::from)?;
        Ok(Identity::parse(kind, &self.value).map_err(VaultError::from)?)
    }
}

fn source(text: Option<&str>) -> Result<FieldSource, ApiError> {
    match text {
        None => Ok(FieldSource::Api),
        Some(t) => FieldSource::decode(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-source",
                "source is `form`, `import`, `api` or `third-party:<processor id>`",
            )
        }),
    }
}

/// `POST /v1/subjects`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The declared purpose the data is collected for.
    pub purpose: String,
    /// Where it came from (default `api`).
    pub source: Option<String>,
    /// At least one identity.
    pub identities: Vec<IdentityBody>,
    /// Values by category key.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

async fn create<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    json: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(json)?;
    let identities = b
        .identities
        .iter()
        .map(IdentityBody::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let input = NewSubjectInput {
        identities,
        fields: b.fields.into_iter().collect(),
        purpose: b.purpose,
        source: source(b.source.as_deref())?,
    };
    let id = state.vault.create(&access, &input).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

fn purpose_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("steward-purpose")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

async fn lookup<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Peer(peer): Peer,
    headers: HeaderMap,
    json: Result<Json<IdentityBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let identity = body(json)?.parse()?;
    let now = state.vault.clock().now();
    let ip = state.guard.client(&headers, peer);
    let identity_key = state.guard.key(identity.kind().as_str(), identity.value());
    if let Err(wait) = state
        .guard
        .lookup_ip
        .check(&ip, now)
        .and_then(|()| state.guard.lookup_identity.check(&identity_key, now))
    {
        let mut entry = access.entry("subject.lookup", now);
        entry.categories = vec![identity.kind().category().to_owned()];
        return Err(refuse(&state.vault, entry, ApiError::too_many(wait)).await);
    }
    let purpose = purpose_header(&headers);
    match state.vault.lookup(&access, &identity, purpose).await? {
        Some(id) => Ok(Json(json!({ "id": id })).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no subject has this {}", identity.kind()),
        )),
    }
}

/// The peer's address, when the router was served with connect info (`None` otherwise).
pub struct Peer(pub Option<SocketAddr>);

impl<T: Send + Sync> axum::extract::FromRequestParts<T> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &T,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// `GET /v1/subjects/{id}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Only these categories (comma-separated taxonomy keys), each covered by the purpose.
    pub categories: Option<String>,
}

async fn read<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let query = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "the only query parameter is `categories`, a comma-separated list of category keys",
        )
    })?;
    let only: Vec<String> = query
        .categories
        .as_deref()
        .map(steward_core::Scope::split)
        .unwrap_or_default();
    let Some(purpose) = purpose_header(&headers) else {
        let mut entry = access.entry("subject.read", state.vault.clock().now());
        entry.subject = Some(id);
        let error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing-purpose",
            "name the declared purpose you read for in the `Steward-Purpose` header",
        );
        return Err(refuse(&state.vault, entry, error).await);
    };
    Ok(Json(state.vault.read(&access, id, purpose, &only).await?).into_response())
}

async fn export<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    Ok(Json(state.vault.export(&access, id).await?).into_response())
}

/// `GET /v1/audit` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this actor (`key:stw_…`, `staff:…`, `cli`).
    pub actor: Option<String>,
    /// Only this purpose.
    pub purpose: Option<String>,
    /// Only entries at or after (RFC 3339).
    pub since: Option<String>,
    /// Only entries before (RFC 3339).
    pub until: Option<String>,
    /// Entries after this sequence number (for paging).
    pub after: Option<u64>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
}

fn instant(text: Option<&str>, name: &str) -> Result<Option<time::OffsetDateTime>, ApiError> {
    text.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    format!("`{name}` is an RFC 3339 time such as 2026-11-22T10:00:00Z"),
                )
            },
        )
    })
    .transpose()
}

async fn audit_entries<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "the query parameters are subject, actor, purpose, since, until, after and limit",
        )
    })?;
    let filter = AuditFilter {
        subject: q.subject.as_deref().map(subject_id).transpose()?,
        actor: q.actor,
        purpose: q.purpose,
        since: instant(q.since.as_deref(), "since")?,
        until: instant(q.until.as_deref(), "until")?,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let entries = state
        .vault
        .audit_entries(&access, &filter, q.after.unwrap_or(0), limit)
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "entries": entries, "next_after": next })).into_response())
}

async fn audit_verify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    let mut entry = access.entry("audit.verify", state.vault.clock().now());
    entry.flagged = false;
    if let Err(denied) = access.may(Operation::Audit) {
        let error = ApiError::new(StatusCode::FORBIDDEN, denied.code, denied.message);
        return Err(refuse(&state.vault, entry, error).await);
    }
    let result = state.vault.verify_audit(|_, _| {}).await?;
    let body = match &result {
        Ok(v) => {
            entry.detail = Some(format!("{} entries intact", v.entries));
            json!({ "intact": true, "entries": v.entries, "checkpoints": v.checkpoints, "head": v.head })
        }
        Err(b) => {
            entry.outcome = Outcome::Failed;
            entry.code = Some("audit-broken".to_owned());
            json!({ "intact": false, "break": b.to_string() })
        }
    };
    state.vault.record(entry).await?;
    Ok(Json(body).into_response())
}

/// `PATCH /v1/subjects/{id}/fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RectifyBody {
    /// The declared purpose the corrected value is collected for.
    pub purpose: String,
    /// The category to correct.
    pub category: String,
    /// The new value.
    pub value: String,
    /// Where it came from (default `api`).
    pub source: Option<String>,
}

async fn rectify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<RectifyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let b = body(json)?;
    state
        .vault
        .rectify(
            &access,
            id,
            &b.category,
            &b.value,
            &b.purpose,
            &source(b.source.as_deref())?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn erase<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    Ok(Json(state.vault.erase(&access, id).await?).into_response())
}
