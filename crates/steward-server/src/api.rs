//! The vault's HTTP API, `/v1/…`: create a subject, look one up by identity, read it for a
//! declared purpose, rectify a field, export or erase it, and read or verify the audit trail.
//!
//! Every call carries an API key (`Authorization: Bearer stw_…`) or a staff session (cookie
//! and, for changes, a CSRF token). The key's role and scope bound what it may do; the vault
//! checks every access and writes its audit entry, allowed or refused. No personal data
//! travels in a URL: identities go in request bodies, reads name their purpose in the
//! `Steward-Purpose` header, and support staff name their ticket in `Steward-Reason`.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use steward_core::audit::{AuditFilter, Outcome};
use steward_core::rate_limit::Hit;
use steward_core::{
    Access, FieldSource, Identity, IdentityKind, NewSubjectInput, Operation, Store, VaultError,
};

pub use crate::error::{ApiError, MAX_BODY, refuse};
use crate::error::{body, subject_id};
pub use crate::state::{ApiState, Guard, Peer, Rates};
use crate::state::{counted, limit, limit_lookup};

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

pub(crate) fn source(text: Option<&str>) -> Result<FieldSource, ApiError> {
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

/// `POST /v1/subjects`. Whether an identity is taken (`409`) tells whether a person is
/// known, so every identity a create names counts against the per-identity look-up limit,
/// whatever the key may otherwise do (an unknown identity is created, which the audit shows).
pub(crate) async fn create<S: Store>(
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
    for identity in &identities {
        let who = counted(identity);
        let hit = Hit {
            limit: "lookup-identity",
            rate: state.guard.rates.lookup_identity,
            value: who.as_bytes(),
        };
        limit(&state, &[hit], || {
            let mut entry = access.entry("subject.create", state.vault.clock().now());
            entry.categories = vec![identity.kind().category().to_owned()];
            entry
        })
        .await?;
    }
    let input = NewSubjectInput {
        identities,
        fields: b.fields.into_iter().collect(),
        purpose: b.purpose,
        source: source(b.source.as_deref())?,
    };
    let id = state.vault.create(&access, &input).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// The `Steward-Purpose` header: absent is `None`; present, it must name something (an empty
/// or unreadable one is `400 invalid-purpose`, never read as absent).
pub(crate) fn purpose_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("steward-purpose") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(p) if !p.is_empty() => Ok(Some(p)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-purpose",
            "`Steward-Purpose` is empty or not text: name a declared purpose, or leave the header out",
        )),
    }
}

pub(crate) async fn lookup<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Peer(peer): Peer,
    headers: HeaderMap,
    json: Result<Json<IdentityBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let identity = body(json)?.parse()?;
    let purpose = purpose_header(&headers)?;
    limit_lookup(&state, &access, &headers, peer, &identity).await?;
    match state.vault.lookup(&access, &identity, purpose).await? {
        Some(id) => Ok(Json(json!({ "id": id })).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no subject has this {}", identity.kind()),
        )),
    }
}

/// `GET /v1/subjects/{id}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Only these categories (comma-separated taxonomy keys), each covered by the purpose.
    pub categories: Option<String>,
}

pub(crate) async fn read<S: Store>(
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
    let Some(purpose) = purpose_header(&headers)? else {
        let mut entry = access.entry("subject.read", state.vault.clock().now());
        entry.subject = Some(id);
        let error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing-purpose",
            "name the declared purpose you read for in the `Steward-Purpose` header",
        );
        return Err(refuse(&state.vault, entry, error).await);
    };
    Ok(Json(state.ledger.read(&access, id, purpose, &only).await?).into_response())
}

pub(crate) async fn export<S: Store>(
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
    /// Entries after this sequence number (for paging; 0 to 2^63 - 1).
    pub after: Option<i64>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
}

pub(crate) fn instant(
    text: Option<&str>,
    name: &str,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
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

pub(crate) async fn audit_entries<S: Store>(
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
    let limit = q.limit.unwrap_or(1000);
    let after = u64::try_from(q.after.unwrap_or(0));
    let (Ok(after), true) = (after, (1..=1000).contains(&limit)) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "`limit` is 1 to 1000 and `after` a sequence number (0 or more)",
        ));
    };
    let entries = state
        .vault
        .audit_entries(&access, &filter, after, limit)
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "entries": entries, "next_after": next })).into_response())
}

pub(crate) async fn audit_verify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    let mut entry = access.entry("audit.verify", state.vault.clock().now());
    entry.flagged = false;
    if let Err(denied) = access.authorize(Operation::Audit, steward_core::access::Reach::Nothing) {
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

pub(crate) async fn rectify<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    json: Result<Json<RectifyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let b = body(json)?;
    state
        .ledger
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

/// The body of `POST /v1/subjects/{id}/activity` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivityBody {
    /// `ended` when the person's contract ended now, `running` when it runs again.
    contract: Option<String>,
}

/// `POST /v1/subjects/{id}/activity`: the person was active now (restarts "… after last
/// activity" periods); `{"contract": "ended"}` also starts "… after the end of the
/// contract" periods, `{"contract": "running"}` stops them.
pub(crate) async fn activity<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    sent: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    // The body is optional: none at all means "active now"; one that is sent must be JSON,
    // and a bad one gets the same problem answer as every other body.
    let b = if sent.is_empty() {
        ActivityBody::default()
    } else {
        body(Json::<ActivityBody>::from_bytes(&sent))?
    };
    let contract = match b.contract.as_deref() {
        None => None,
        Some("ended") => Some(true),
        Some("running") => Some(false),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-contract",
                "`contract` is `ended` (the contract ended now) or `running` (it runs again)",
            ));
        }
    };
    state
        .ledger
        .vault()
        .record_activity(&access, id, contract)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn erase<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    Ok(Json(state.ledger.erase_one(&access, id).await?).into_response())
}

/// `GET /metrics` with a key that may read the audit (auditor, dpo, admin): the Prometheus
/// metrics. Without a key, serve them on their own address (`--metrics-listen`).
pub(crate) async fn metrics<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    access
        .authorize(Operation::Audit, steward_core::access::Reach::Nothing)
        .map_err(|d| ApiError::new(StatusCode::FORBIDDEN, d.code, d.message))?;
    Ok(crate::telemetry::scrape(&state.metrics, &state.ledger).await)
}
