//! Who is calling: the middleware that turns an API key or a staff session (with its CSRF
//! token) into the `Access` every handler acts with, reads the support ticket, and audits each
//! refusal. Uses `session` for staff sign-in state, `state` and `error`.

use std::net::SocketAddr;

use crate::error::{ApiError, refuse};
use crate::state::{ApiState, ip_text, limit};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use steward_core::api_key::prefix_of;
use steward_core::audit::{self, AuditEntry};
use steward_core::rate_limit::Hit;
use steward_core::{Access, Role, Store};
use uuid::Uuid;

pub(crate) fn unauthenticated(
    actor: String,
    request: Uuid,
    at: time::OffsetDateTime,
) -> AuditEntry {
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
pub(crate) async fn authenticate<S: Store>(
    State(state): State<ApiState<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = state.vault.clock().now();
    // The id the log and the `Steward-Request-Id` header already carry, when there is one.
    let id = request
        .extensions()
        .get::<crate::telemetry::RequestId>()
        .map_or_else(Uuid::new_v4, |r| r.0);
    let (headers, method) = (request.headers().clone(), request.method().clone());
    let principal = match principal(&state, &headers, &method, now).await {
        Ok(p) => p,
        Err((actor, error)) => {
            let mut entry = unauthenticated(actor, id, now);
            entry.role = "none".to_owned();
            // Guessing keys (or sending a made-up one in a loop) is limited per address, and
            // past the limit the refusals are counted rather than audited one by one.
            if error.status == StatusCode::UNAUTHORIZED {
                let peer = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0);
                let ip = ip_text(state.guard.client(&headers, peer));
                let hit = Hit {
                    limit: "auth-failure-ip",
                    rate: state.guard.rates.auth_failure_ip,
                    value: ip.as_bytes(),
                };
                if let Err(e) = limit(&state, &[hit], || entry.clone()).await {
                    return with_request_id(e.into_response(), id);
                }
            }
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

pub(crate) fn with_request_id(mut response: Response, id: Uuid) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("steward-request-id", v);
    }
    response
}

/// Who is calling, or (the actor to audit, the refusal).
pub(crate) async fn principal<S: Store>(
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
        Err(e) => {
            tracing::error!(target: "steward::auth", cause = %e, "the key store failed");
            Err((
                actor,
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the key store failed; the operator's logs say why",
                ),
            ))
        }
    }
}
