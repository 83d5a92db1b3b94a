//! The API's routes, by area: subjects and the audit (`api`), consent and permits
//! (`consent`), data-subject requests (`requests`), staff sessions (`session`), metrics. The
//! only module that knows every area; none of them imports it.

use crate::api::{
    activity, audit_entries, audit_verify, create, erase, export, lookup, metrics, read, rectify,
};
use crate::auth::authenticate;
use crate::state::ApiState;
use axum::Router;
use axum::middleware;
use axum::routing::{get, patch, post};
use steward_core::Store;

/// The API's routes over `state`.
pub fn router<S: Store>(state: ApiState<S>) -> Router {
    let authenticated = Router::new()
        .route("/v1/subjects", post(create::<S>))
        .route("/v1/subjects/lookup", post(lookup::<S>))
        .route("/v1/subjects/{id}", get(read::<S>).delete(erase::<S>))
        .route("/v1/subjects/{id}/fields", patch(rectify::<S>))
        .route("/v1/subjects/{id}/activity", post(activity::<S>))
        .route("/v1/subjects/{id}/export", get(export::<S>))
        .route("/v1/audit", get(audit_entries::<S>))
        .route("/v1/audit/verify", get(audit_verify::<S>))
        .route("/metrics", get(metrics::<S>))
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
        .route(
            "/v1/incidents",
            get(crate::incidents::list::<S>).post(crate::incidents::open::<S>),
        )
        .route("/v1/incidents/{id}", get(crate::incidents::show::<S>))
        .route(
            "/v1/incidents/{id}/assess",
            post(crate::incidents::assess::<S>),
        )
        .route(
            "/v1/incidents/{id}/affected",
            post(crate::incidents::affected::<S>),
        )
        .route(
            "/v1/incidents/{id}/notify",
            post(crate::incidents::notify::<S>),
        )
        .route(
            "/v1/incidents/{id}/close",
            post(crate::incidents::close::<S>),
        )
        .route(
            "/v1/incidents/{id}/report",
            get(crate::incidents::report::<S>),
        )
        .route(
            "/v1/incidents/{id}/password-resets",
            post(crate::incidents::acknowledge_resets::<S>),
        )
        .route(
            "/v1/subjects/{id}/notices",
            get(crate::incidents::notices::<S>),
        )
        .route(
            "/v1/subjects/{id}/notices/{incident}/read",
            post(crate::incidents::read_notice::<S>),
        )
        .route(
            "/v1/disclosures",
            get(crate::incidents::disclosures::<S>).post(crate::incidents::disclose::<S>),
        )
        .route("/v1/aggregates", post(crate::incidents::aggregate::<S>))
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
            get(crate::requests::verify_page::<S>).post(crate::requests::verify_link::<S>),
        )
        .route(
            "/requests/{id}/verify",
            post(crate::requests::verify_code::<S>),
        )
        .route("/requests/{id}/package", get(crate::requests::package::<S>))
        .route(
            "/requests/{id}/notifications/{recipient}/ack",
            get(crate::requests::ack_page::<S>).post(crate::requests::ack_link::<S>),
        )
        .with_state(state)
}
