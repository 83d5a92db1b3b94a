//! The API's one error type and the helpers that turn bad input and refusals into it: an
//! `ApiError` is a status, a stable code and a message without personal data; a refusal
//! made before the vault is reached is audited by `refuse`. Every area uses it; it uses none.

use std::str::FromStr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_core::audit::{AuditEntry, Outcome};
use steward_core::staff::StaffError;
use steward_core::{Store, SubjectId, Vault, VaultError};

/// An API error: a status, a stable code and a message that says what to do. Never holds a
/// personal value.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
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
            // A field over its limit is a bad field; 413 is for the body as a whole.
            VaultError::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            VaultError::Immutable(_) | VaultError::Duplicate { .. } => StatusCode::CONFLICT,
            VaultError::NotFound => StatusCode::NOT_FOUND,
            VaultError::Denied(_) => StatusCode::FORBIDDEN,
            VaultError::Staff(e) => match e {
                StaffError::Username | StaffError::Password(_) => StatusCode::UNPROCESSABLE_ENTITY,
                StaffError::Exists(_) => StatusCode::CONFLICT,
                StaffError::Unknown(_) => StatusCode::NOT_FOUND,
                StaffError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
                StaffError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            },
            VaultError::Crypto(_)
            | VaultError::KeyUnreadable { .. }
            | VaultError::RotationInterrupted { .. }
            | VaultError::Store(_)
            | VaultError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(target: "steward::vault", code = e.code(), cause = %e, "the vault failed");
            "the vault failed; the operator's logs say why".to_owned()
        } else {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(target: "steward::vault", code = e.code(), cause = %e, "busy");
            }
            e.to_string()
        };
        let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal"
        } else {
            e.code()
        };
        let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(5);
        Self {
            retry_after,
            ..Self::new(status, code, message)
        }
    }
}

/// The largest request body the API reads (axum's default limit), in bytes.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

pub(crate) fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!(
                    "the request body is larger than {} MiB; send less per call",
                    MAX_BODY / 1024 / 1024
                ),
            );
        }
        // serde's own messages can quote the values sent, so they are not passed on.
        let (status, message) = match rejection {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                (StatusCode::BAD_REQUEST, "the request body is not valid JSON")
            }
            JsonRejection::BytesRejection(_) => (
                StatusCode::BAD_REQUEST,
                "the request body could not be read in full: it was cut off, or took longer than the server waits for a body",
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                "the request body does not match this endpoint's schema (see /openapi.json)",
            ),
        };
        ApiError::new(status, "invalid-body", message)
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
