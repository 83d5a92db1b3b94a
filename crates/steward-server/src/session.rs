//! Staff sign-in for the admin console: `POST /v1/session` (JSON: username, password, and the
//! TOTP code when the account has one) sets a `__Host-steward-session` cookie (Secure,
//! HttpOnly, SameSite=Strict, Path=/) and returns the session's CSRF token; `GET /v1/session`
//! says who is signed in; `DELETE /v1/session` signs out.
//!
//! A session authenticates every `/v1` call like an API key does. Calls that change something
//! (any method but GET and HEAD) must also carry the CSRF token in `X-CSRF-Token`, and a
//! cross-site `Origin` is refused outright, so a page elsewhere cannot act in a signed-in
//! browser's name.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use steward_core::rate_limit::Hit;
use steward_core::staff::SESSION_IDLE;
use steward_core::{Access, Principal, Store, VaultError};
use zeroize::Zeroizing;

use crate::error::{ApiError, refuse};
use crate::state::{ApiState, Peer};

/// The session cookie's name. The `__Host-` prefix makes browsers insist on Secure, Path=/ and
/// no Domain, so no sibling host can set or read it.
pub const COOKIE: &str = "__Host-steward-session";

/// The session token in the request's cookies.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    crate::web::cookie_value(headers, COOKIE)
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// Whether `Origin`, when sent, is this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// The principal of the request's session, checking the CSRF token for changes; or the actor
/// to audit and the refusal.
pub async fn principal<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Principal, (String, ApiError)> {
    let Some(token) = token(headers) else {
        return Err((
            "anonymous".to_owned(),
            unauthorized(
                "unauthorized",
                "send `Authorization: Bearer <API key>` (create one with `steward apikey create`) or sign in at POST /v1/session",
            ),
        ));
    };
    let (principal, _) = state.vault.session(token).await.map_err(|code| {
        (
            "anonymous".to_owned(),
            unauthorized(
                code,
                "the session is not valid or has ended; sign in again at POST /v1/session",
            ),
        )
    })?;
    let safe = matches!(*method, Method::GET | Method::HEAD);
    if !safe {
        if !same_origin(headers) {
            return Err((
                principal.actor,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cross-origin",
                    "this request came from another site; changes are accepted only from Steward's own pages",
                ),
            ));
        }
        let csrf = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !state.vault.csrf_ok(token, csrf) {
            return Err((
                principal.actor,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "invalid-csrf",
                    "a change made in a signed-in session needs the session's CSRF token in `X-CSRF-Token` (GET /v1/session returns it)",
                ),
            ));
        }
    }
    Ok(principal)
}

/// `POST /v1/session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// The 6-digit TOTP code, when the account has TOTP.
    pub code: Option<String>,
}

/// The session cookie's `Set-Cookie` value (`Max-Age=0` with an empty value clears it).
pub(crate) fn cookie(value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

/// The audit entry of a sign-in refused before the account was looked at: no name kept.
fn anonymous_sign_in(now: time::OffsetDateTime) -> steward_core::audit::AuditEntry {
    let mut entry = Access::new(Principal::cli()).entry("staff.sign-in", now);
    entry.actor = "anonymous".to_owned();
    entry.role = "none".to_owned();
    entry.flagged = false;
    entry
}

/// The sign-in limits, per client address and per username (the API's and the console's);
/// refusals past them are audited without the name.
pub(crate) async fn limit_sign_in<S: Store>(
    state: &ApiState<S>,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    username: &str,
) -> Result<(), ApiError> {
    let now = state.vault.clock().now();
    let ip = crate::state::ip_text(state.guard.client(headers, peer));
    let hits = [
        Hit {
            limit: "signin-ip",
            rate: state.guard.rates.signin_ip,
            value: ip.as_bytes(),
        },
        Hit {
            limit: "signin-user",
            rate: state.guard.rates.signin_user,
            value: username.as_bytes(),
        },
    ];
    crate::state::limit(state, &hits, || anonymous_sign_in(now)).await
}

/// Signs a staff member in. Rate-limited per client address and per username; every failure
/// answers the same.
pub async fn sign_in<S: Store>(
    State(state): State<ApiState<S>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    json: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let now = state.vault.clock().now();
    if !same_origin(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin",
            "sign in from Steward's own pages",
        ));
    }
    // 413 for a body over the limit, 415 for one not sent as JSON, like every endpoint.
    let mut body = crate::error::body(json)?;
    limit_sign_in(&state, &headers, peer, &body.username).await?;
    let password = Zeroizing::new(std::mem::take(&mut body.password));
    let session = match state
        .vault
        .sign_in(&body.username, &password, body.code.as_deref())
        .await
    {
        Ok(s) => s,
        Err(VaultError::Denied(d)) => {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, d.code, d.message));
        }
        Err(e @ VaultError::Staff(steward_core::staff::StaffError::Busy)) => {
            return Err(refuse(&state.vault, anonymous_sign_in(now), e.into()).await);
        }
        Err(e) => return Err(e.into()),
    };
    let max_age = (session.record.expires_at - now).whole_seconds();
    let mut response = Json(json!({
        "username": session.record.username,
        "role": session.role,
        "csrf_token": session.csrf,
        "expires_at": session.record.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "idle_timeout_seconds": SESSION_IDLE.whole_seconds(),
    }))
    .into_response();
    if let Some(c) = cookie(&session.token, max_age) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/session`: who is signed in, and the CSRF token for changes.
pub async fn current<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = token(&headers) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-session",
            "this call was made with an API key, not a session",
        ));
    };
    let csrf = state.vault.csrf_token(token)?;
    let mut response = Json(json!({
        "actor": access.principal.actor,
        "role": access.principal.role,
        "csrf_token": csrf,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /v1/session`: signs out and clears the cookie.
pub async fn sign_out<S: Store>(
    State(state): State<ApiState<S>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = token(&headers) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-session",
            "this call was made with an API key, not a session",
        ));
    };
    state.vault.sign_out(&access, token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = cookie("", 0) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(response)
}
