//! The vault's HTTP API, `/v1/…`: create a subject, look one up by identity, read it for a
//! declared purpose, rectify a field, erase it. Every call carries an API key
//! (`Authorization: Bearer stw_…`); erasure needs the admin role. No personal data travels in
//! a URL: identities go in request bodies, reads name their purpose in a header.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use steward_core::api_key::{Role, prefix_of};
use steward_core::{
    FieldSource, Identity, IdentityKind, NewSubjectInput, Store, SubjectId, Vault, VaultError,
};

/// What the API handlers share.
pub struct ApiState<S: Store> {
    /// The vault.
    pub vault: Arc<Vault<S>>,
}

impl<S: Store> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        Self {
            vault: Arc::clone(&self.vault),
        }
    }
}

/// An API error: a status, a stable code and a message that says what to do. Never holds a
/// personal value.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let (status, code) = match &e {
            VaultError::Identity(_) | VaultError::NoIdentity => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-identity")
            }
            VaultError::UnknownPurpose(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-purpose"),
            VaultError::UnknownCategory(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unknown-category")
            }
            VaultError::NotCollected { .. } | VaultError::NotStored(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "purpose-may-not-collect")
            }
            VaultError::UnknownSource(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-source"),
            VaultError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "value-too-large"),
            VaultError::Immutable(_) => (StatusCode::CONFLICT, "immutable"),
            VaultError::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate-identity"),
            VaultError::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            VaultError::Crypto(_) | VaultError::Store(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "the vault failed; the operator's logs say why".to_owned()
        } else {
            e.to_string()
        };
        Self::new(status, code, message)
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
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

fn subject_id(text: &str) -> Result<SubjectId, ApiError> {
    SubjectId::from_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-id",
            "a subject id is a UUID, as returned when the subject was created",
        )
    })
}

/// Checks the API key and records its role for the handlers.
async fn authenticate<S: Store>(
    State(state): State<ApiState<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <API key>`; create a key with `steward apikey create`",
        )
        .into_response();
    };
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this API key is not valid",
        )
        .into_response()
    };
    let Some(prefix) = prefix_of(presented) else {
        return invalid();
    };
    match state.vault.store().find_api_key(prefix).await {
        Ok(Some(record)) if record.revoked_at.is_some() => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "revoked",
            format!("API key {prefix} was revoked"),
        )
        .into_response(),
        Ok(Some(record)) if record.accepts(presented) => {
            request.extensions_mut().insert(record.role);
            next.run(request).await
        }
        Ok(_) => invalid(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the key store failed",
        )
        .into_response(),
    }
}

/// The API's routes over `state`.
pub fn router<S: Store>(state: ApiState<S>) -> Router {
    Router::new()
        .route("/v1/subjects", post(create::<S>))
        .route("/v1/subjects/lookup", post(lookup::<S>))
        .route("/v1/subjects/{id}", get(read::<S>).delete(erase::<S>))
        .route("/v1/subjects/{id}/fields", patch(rectify::<S>))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate::<S>,
        ))
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
    let id = state.vault.create(&input).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn lookup<S: Store>(
    State(state): State<ApiState<S>>,
    json: Result<Json<IdentityBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let identity = body(json)?.parse()?;
    match state.vault.lookup(&identity).await? {
        Some(id) => Ok(Json(json!({ "id": id })).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no subject has this {}", identity.kind()),
        )),
    }
}

async fn read<S: Store>(
    State(state): State<ApiState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let purpose = headers
        .get("steward-purpose")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing-purpose",
                "name the declared purpose you read for in the `Steward-Purpose` header",
            )
        })?;
    Ok(Json(state.vault.read(id, purpose).await?).into_response())
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
    Path(id): Path<String>,
    json: Result<Json<RectifyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = subject_id(&id)?;
    let b = body(json)?;
    state
        .vault
        .rectify(
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
    Extension(role): Extension<Role>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "erasing a subject needs an admin key; this is a service key",
        ));
    }
    let id = subject_id(&id)?;
    Ok(Json(state.vault.erase(id).await?).into_response())
}
