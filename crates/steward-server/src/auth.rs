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
    let store = state.vault.store();
    // Read before the record: a revocation after this point changes it, and the record read
    // under the old number is then not kept.
    let generation = store.api_keys_generation();
    let found = match generation.and_then(|g| state.keys.get(prefix, g, now)) {
        Some(record) => Ok(Some(record)),
        None => store.find_api_key(prefix).await.map(|found| {
            found.map(|record| {
                let record = std::sync::Arc::new(record);
                if let Some(g) = generation {
                    state
                        .keys
                        .put(prefix, std::sync::Arc::clone(&record), g, now);
                }
                record
            })
        }),
    };
    match found {
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

/// Stored API keys' records, kept in memory so that a request with a key costs no query:
/// each is kept under the store's key generation it was read under
/// ([`steward_core::store::AccessStore::api_keys_generation`]) and used only while that has
/// not changed (a revocation anywhere changes it) and for at most [`KEY_CACHE_AGE`]. The key
/// itself is still checked on every request (its hash, in constant time, and its expiry),
/// and unknown prefixes are never kept.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Kept>>,
}

#[derive(Debug)]
struct Kept {
    record: std::sync::Arc<steward_core::api_key::ApiKeyRecord>,
    generation: u64,
    at: time::OffsetDateTime,
}

/// The longest a record is kept, should a revocation's notice be lost (a crash between its
/// commit and its notice).
pub const KEY_CACHE_AGE: time::Duration = time::Duration::seconds(30);

/// At most this many records are kept (one per key in use); beyond, the oldest are dropped.
const KEY_CACHE_MAX: usize = 4096;

impl KeyCache {
    fn get(
        &self,
        prefix: &str,
        generation: u64,
        now: time::OffsetDateTime,
    ) -> Option<std::sync::Arc<steward_core::api_key::ApiKeyRecord>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(prefix)
            .filter(|k| k.generation == generation && now - k.at < KEY_CACHE_AGE && now >= k.at)
            .map(|k| std::sync::Arc::clone(&k.record))
    }

    fn put(
        &self,
        prefix: &str,
        record: std::sync::Arc<steward_core::api_key::ApiKeyRecord>,
        generation: u64,
        now: time::OffsetDateTime,
    ) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Records under an older generation are of no more use.
        entries.retain(|_, k| k.generation == generation);
        if entries.len() >= KEY_CACHE_MAX
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, k)| k.at)
                .map(|(p, _)| p.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            prefix.to_owned(),
            Kept {
                record,
                generation,
                at: now,
            },
        );
    }
}
