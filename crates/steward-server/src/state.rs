//! What the API's handlers share: the state (vault, ledger, request workflow, metrics, rate
//! limits), how a client's address is read, and the rate-limit checks every area applies.
//! Uses `error` for its refusals; every area uses it, it uses no area.

use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use crate::error::{ApiError, refuse};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode};
use steward_core::audit::AuditEntry;
use steward_core::rate_limit::{Hit, Verdict};
use steward_core::{Access, Identity, Store, Vault};

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
    /// The process's metrics.
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// The pages' shared parts (stylesheet, CSP, words), for answers a person reads.
    pub web: Arc<crate::web::Web>,
    /// Verified API keys' records, kept while no key is revoked anywhere.
    pub(crate) keys: Arc<crate::auth::KeyCache>,
}

impl<S: Store> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        Self {
            vault: Arc::clone(&self.vault),
            ledger: Arc::clone(&self.ledger),
            guard: Arc::clone(&self.guard),
            requests: Arc::clone(&self.requests),
            metrics: Arc::clone(&self.metrics),
            web: Arc::clone(&self.web),
            keys: Arc::clone(&self.keys),
        }
    }
}

/// Rate limits on what could enumerate people or be guessed, and whether to believe
/// `X-Forwarded-For`. The counts live in the store, so every process on one database shares
/// one budget per address and per identity ([`steward_core::rate_limit::SharedLimits`]).
#[derive(Debug)]
pub struct Guard {
    /// The rates.
    pub rates: Rates,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a trusted proxy).
    pub trust_forwarded: bool,
}

/// The rates, as `steward serve` reads them: (events, per window).
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
    /// Calls refused for an unknown, revoked or expired key (or session) per client address.
    pub auth_failure_ip: (u32, time::Duration),
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
            auth_failure_ip: (60, time::Duration::MINUTE),
        }
    }
}

impl Guard {
    /// Limits at `rates`.
    pub fn new(rates: Rates, trust_forwarded: bool) -> Self {
        Self {
            rates,
            trust_forwarded,
        }
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

/// Counts `hits` against the shared rate limits. Over one: `429 rate-limited` with
/// `Retry-After`, audited as `entry` the first time this process refuses that key in its
/// window; later refusals are only counted, and summarised in the audit once a minute. A store
/// that cannot count answers 503: nothing gets past a limit that cannot be checked.
pub(crate) async fn limit<S: Store>(
    state: &ApiState<S>,
    hits: &[Hit<'_>],
    entry: impl FnOnce() -> AuditEntry,
) -> Result<(), ApiError> {
    let now = state.vault.clock().now();
    match state
        .vault
        .limits()
        .check(state.vault.store(), hits, now)
        .await
    {
        Ok(Verdict::Allowed) => Ok(()),
        Ok(Verdict::Refused { wait, record: true }) => {
            Err(refuse(&state.vault, entry(), ApiError::too_many(wait)).await)
        }
        Ok(Verdict::Refused {
            wait,
            record: false,
        }) => Err(ApiError::too_many(wait)),
        Err(_) => Err(ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "limits-unavailable",
                "the rate limits cannot be checked just now; try again shortly",
            )
        }),
    }
}

/// The text a client address is counted under.
pub(crate) fn ip_text(ip: IpAddr) -> String {
    ip.to_string()
}

/// What a limit per identity counts an identity under: its kind and normalised value (hashed
/// by the limits before it is stored).
pub(crate) fn counted(identity: &Identity) -> String {
    format!("{}:{}", identity.kind().as_str(), identity.value())
}

/// Counts a look-up of `identity` against the limits per client address and per identity.
pub(crate) async fn limit_lookup<S: Store>(
    state: &ApiState<S>,
    access: &Access,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    identity: &Identity,
) -> Result<(), ApiError> {
    let ip = ip_text(state.guard.client(headers, peer));
    let who = counted(identity);
    let hits = [
        Hit {
            limit: "lookup-ip",
            rate: state.guard.rates.lookup_ip,
            value: ip.as_bytes(),
        },
        Hit {
            limit: "lookup-identity",
            rate: state.guard.rates.lookup_identity,
            value: who.as_bytes(),
        },
    ];
    limit(state, &hits, || {
        let mut entry = access.entry("subject.lookup", state.vault.clock().now());
        entry.categories = vec![identity.kind().category().to_owned()];
        entry
    })
    .await
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
