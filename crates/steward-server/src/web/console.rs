//! The admin console (`/admin`): staff sign in with password and TOTP (the accounts of
//! `steward admin`), then see and act through the same core functions as the API, with the
//! same role checks and the same audit entries.
//!
//! - `/admin` — requests by due date (overdue first, due within 3 days marked), the audit
//!   chain's state, the declaration's lint, the retention plan and the open incidents.
//! - `/admin/requests`, `/admin/requests/{id}` — list and detail: timeline, approve / deny /
//!   extend with a reason, the package, what erasure did item by item, recipients' notices
//!   and acknowledgements.
//! - `/admin/people` — look a person up (purpose and reason, audited).
//! - `/admin/records` — records of processing (CSV, XLSX); `/admin/notice` — the notice.
//! - `/admin/keys` — API keys: create (with expiry), revoke. `/admin/audit` — with filters.
//!
//! A change posted after the session ended is not acted on: the sign-in page keeps the
//! form, and after signing in the person sends it again with one press.

use std::sync::Mutex;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use steward_core::audit::AuditFilter;
use steward_core::requests::storage::RequestFilter;
use steward_core::{Access, Identity, IdentityKind, Operation, Role, Store, VaultError};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::centre::Pages;
use super::{Form, Problems, Web, csrf_for, csrf_ok, form_cookie, minute, render, see_other};
use crate::error::ApiError;
use crate::state::Peer;

/// The console's routes.
pub fn router<S: Store>(pages: Pages<S>) -> Router {
    Router::new()
        .route("/admin", get(dashboard::<S>))
        .route("/admin/sign-in", get(sign_in_page::<S>).post(sign_in::<S>))
        .route("/admin/sign-out", post(sign_out::<S>))
        .route("/admin/requests", get(requests::<S>))
        .route("/admin/requests/{id}", get(request::<S>))
        .route("/admin/requests/{id}/package", get(package::<S>))
        .route("/admin/requests/{id}/{action}", post(decide::<S>))
        .route("/admin/people", get(people::<S>).post(people::<S>))
        .route("/admin/audit", get(audit::<S>))
        .route("/admin/keys", get(keys::<S>).post(keys::<S>))
        .route("/admin/keys/revoke", post(revoke::<S>))
        .route("/admin/records", get(records::<S>))
        .route("/admin/records.csv", get(records_csv::<S>))
        .route("/admin/records.xlsx", get(records_xlsx::<S>))
        .route("/admin/notice", get(notice::<S>))
        .with_state(pages)
}

/// What the console's layout shows.
pub struct Chrome {
    title: String,
    name: String,
    style: String,
    actor: String,
    role: String,
    csrf: String,
    current: &'static str,
    nav: Vec<(&'static str, &'static str, &'static str)>,
    flash: String,
    problem: String,
}

/// The console's pages, and the operation each needs (none: any staff member).
const NEEDS: [(&str, Option<Operation>); 7] = [
    ("dashboard", None),
    ("requests", Some(Operation::Decide)),
    ("people", Some(Operation::Lookup)),
    ("audit", Some(Operation::Audit)),
    ("keys", Some(Operation::Keys)),
    ("records", None),
    ("notice", None),
];

const NAV: [(&str, &str, &str); 7] = [
    ("/admin", "dashboard", "Dashboard"),
    ("/admin/requests", "requests", "Requests"),
    ("/admin/people", "people", "People"),
    ("/admin/audit", "audit", "Audit trail"),
    ("/admin/keys", "keys", "API keys"),
    ("/admin/records", "records", "Records of processing"),
    ("/admin/notice", "notice", "Notice"),
];

/// A signed-in staff member.
struct Staff {
    access: Access,
    csrf: String,
}

impl Chrome {
    /// Whether `key` is the page shown (its navigation entry is marked).
    fn is_current(&self, key: &str) -> bool {
        key == self.current
    }
}

impl Staff {
    fn chrome(&self, web: &Web, title: &str, current: &'static str) -> Chrome {
        Chrome {
            title: title.to_owned(),
            name: web.declaration.centre.name.clone(),
            style: web.stylesheet.clone(),
            actor: self.access.principal.actor.clone(),
            role: self.access.principal.role.as_str().to_owned(),
            csrf: self.csrf.clone(),
            current,
            // Only the pages the role may use are offered.
            nav: NAV
                .iter()
                .zip(NEEDS)
                .filter(|(_, (_, needs))| {
                    needs.is_none_or(|op| {
                        self.access
                            .authorize(op, steward_core::access::Reach::Nothing)
                            .is_ok()
                    })
                })
                .map(|(entry, _)| *entry)
                .collect(),
            flash: String::new(),
            problem: String::new(),
        }
    }
}

/// The staff member of the request's session. For a change (`form` given): the same site,
/// the session's CSRF token and a first submission. `Err` is the answer: the sign-in page
/// (keeping a posted form) or a refusal.
async fn staff<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    method: &Method,
    form: Option<(&str, &Form)>,
) -> Result<Staff, Response> {
    let web = &pages.web;
    let state = &pages.api;
    // A form from another site is refused before anything, signed in or not: it is never kept
    // for after a sign-in (that would let a page elsewhere prepare a staff member's action).
    if *method != Method::GET && !super::same_site(headers) {
        let mut c = anonymous_chrome(
            web,
            "This form was sent from another site; nothing was done and nothing was kept.",
        );
        "The form could not be used".clone_into(&mut c.title);
        return Err(render(
            web,
            StatusCode::FORBIDDEN,
            &Message {
                c,
                text: String::new(),
            },
        ));
    }
    let Some(token) = crate::session::token(headers) else {
        return Err(signed_out(pages, headers, form, "").await);
    };
    let Ok(principal) = crate::session::principal(state, &strip_csrf(headers), &Method::GET).await
    else {
        return Err(signed_out(
            pages,
            headers,
            form,
            "Your session has ended (after 30 minutes without use, or 12 hours in all). Sign in again.",
        )
        .await);
    };
    let csrf = state.vault.csrf_token(token).unwrap_or_default();
    let access = Access::new(principal);
    if *method != Method::GET
        && let Some((action, form)) = form
    {
        if !super::same_site(headers) || !state.vault.csrf_ok(token, form.get("csrf")) {
            let mut entry = access.entry("console.form", state.vault.clock().now());
            entry.flagged = false;
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid-csrf",
                "the form was not sent from this console",
            );
            let _ = crate::error::refuse(&state.vault, entry, e).await;
            let staff = Staff { access, csrf };
            let mut c = staff.chrome(web, "The form could not be used", "dashboard");
            c.problem = "This form is out of date or was sent from another page; nothing was done. Open the page again and send it from there.".to_owned();
            return Err(render(
                web,
                StatusCode::FORBIDDEN,
                &Message {
                    c,
                    text: String::new(),
                },
            ));
        }
        // Every change acts once (signing out twice is harmless).
        if action != "/admin/sign-out" && !super::first_submission(state, form.get("once")).await {
            let staff = Staff { access, csrf };
            let mut c = staff.chrome(web, "Already sent", "dashboard");
            c.problem = "This form was already sent; it was acted on once. Nothing was done twice."
                .to_owned();
            return Err(render(
                web,
                StatusCode::CONFLICT,
                &Message {
                    c,
                    text: String::new(),
                },
            ));
        }
    }
    Ok(Staff { access, csrf })
}

/// The headers without a CSRF header (the console's CSRF comes in its forms).
fn strip_csrf(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    h.remove("x-csrf-token");
    h
}

#[derive(Template)]
#[template(path = "admin/layout.html")]
struct Message {
    c: Chrome,
    #[allow(dead_code)]
    text: String,
}

#[derive(Template)]
#[template(path = "admin/signin.html")]
struct SignInPage {
    c: Chrome,
    csrf: String,
    username: String,
    kept: Vec<(String, String)>,
}

fn anonymous_chrome(web: &Web, problem: &str) -> Chrome {
    Chrome {
        title: "Sign in".to_owned(),
        name: web.declaration.centre.name.clone(),
        style: web.stylesheet.clone(),
        actor: String::new(),
        role: String::new(),
        csrf: String::new(),
        current: "",
        nav: Vec::new(),
        flash: String::new(),
        problem: problem.to_owned(),
    }
}

/// The sign-in page, keeping a form posted to `action` when the session had ended.
async fn signed_out<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    form: Option<(&str, &Form)>,
    problem: &str,
) -> Response {
    let web = &pages.web;
    let (cookie, set) = form_cookie(web, headers);
    let mut kept = Vec::new();
    if let Some((action, form)) = form {
        kept.push(("resume".to_owned(), action.to_owned()));
        for (n, v) in &form.0 {
            if n != "csrf" && n != "once" && n.len() <= 64 {
                kept.push((format!("keep.{n}"), v.clone()));
            }
        }
    }
    let status = if form.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    if form.is_none() && problem.is_empty() {
        return see_other("/admin/sign-in", &[]);
    }
    let page = SignInPage {
        c: anonymous_chrome(web, problem),
        csrf: csrf_for(&pages.api, &cookie),
        username: String::new(),
        kept,
    };
    let mut r = render(web, status, &page);
    if let Some(v) = set {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn sign_in_page<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    if let Some(token) = crate::session::token(&headers)
        && pages.api.vault.session(token).await.is_ok()
    {
        return see_other("/admin", &[]);
    }
    let (cookie, set) = form_cookie(&pages.web, &headers);
    let page = SignInPage {
        c: anonymous_chrome(&pages.web, ""),
        csrf: csrf_for(&pages.api, &cookie),
        username: String::new(),
        kept: Vec::new(),
    };
    let mut r = render(&pages.web, StatusCode::OK, &page);
    if let Some(v) = set {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Template)]
#[template(path = "admin/resume.html")]
struct ResumePage {
    c: Chrome,
    action: String,
    once: String,
    kept: Vec<(String, String)>,
}

async fn sign_in<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let web = &pages.web;
    let state = &pages.api;
    let form = Form::parse(&body);
    let (cookie, set) = form_cookie(web, &headers);
    let kept: Vec<(String, String)> = form
        .0
        .iter()
        .filter(|(n, _)| n == "resume" || n.starts_with("keep."))
        .cloned()
        .collect();
    let again = |problem: &str, status: StatusCode| {
        let page = SignInPage {
            c: anonymous_chrome(web, problem),
            csrf: csrf_for(state, &cookie),
            username: form.get("username").to_owned(),
            kept: kept.clone(),
        };
        let mut r = render(web, status, &page);
        if let Some(v) = set.clone() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    };
    if !super::same_site(&headers) || !csrf_ok(state, &cookie, form.get("csrf")) {
        return again(
            "The sign-in form had expired. Your username is kept: enter your password and code again.",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let username = form.get("username");
    if username.is_empty() || form.get("password").is_empty() {
        return again(
            "Enter your username and password.",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let now = state.vault.clock().now();
    if let Err(e) = crate::session::limit_sign_in(state, &headers, peer, username).await {
        return again(&e.message, e.status);
    }
    let password = Zeroizing::new(form.get("password").to_owned());
    let code = Some(form.get("code")).filter(|c| !c.is_empty());
    let session = match state.vault.sign_in(username, &password, code).await {
        Ok(s) => s,
        Err(VaultError::Denied(d)) => return again(&d.message, StatusCode::UNAUTHORIZED),
        Err(e) => {
            let e = ApiError::from(e);
            return again(&e.message, e.status);
        }
    };
    let max_age = (session.record.expires_at - now).whole_seconds();
    let cookie = crate::session::cookie(session.token.as_str(), max_age);
    let resume = form.get("resume");
    if !resumable(resume) {
        return see_other("/admin", &cookie.into_iter().collect::<Vec<_>>());
    }
    // The form the ended session could not act on, to send again with one press.
    let staff = Staff {
        access: Access::new(steward_core::Principal {
            actor: format!("staff:{}", session.record.username),
            role: session.role,
            scope: steward_core::Scope::default(),
        }),
        csrf: session.csrf,
    };
    let page = ResumePage {
        c: staff.chrome(web, "Send your form again", "dashboard"),
        action: resume.to_owned(),
        once: super::random_id(),
        kept: form
            .0
            .iter()
            .filter_map(|(n, v)| n.strip_prefix("keep.").map(|n| (n.to_owned(), v.clone())))
            .collect(),
    };
    let mut r = render(web, StatusCode::OK, &page);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Whether `path` is a console form a kept entry may be sent to again: a request decision,
/// the keys, a look-up — nothing else, no other path.
fn resumable(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "admin", "keys"] | ["", "admin", "keys", "revoke"] | ["", "admin", "people"] => true,
        ["", "admin", "requests", id, action] => {
            Uuid::parse_str(id).is_ok() && matches!(*action, "approve" | "deny" | "extend")
        }
        _ => false,
    }
}

async fn sign_out<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let Ok(staff) = staff(
        &pages,
        &headers,
        &Method::POST,
        Some(("/admin/sign-out", &form)),
    )
    .await
    else {
        return see_other("/admin/sign-in", &[]);
    };
    if let Some(token) = crate::session::token(&headers) {
        let _ = pages.api.vault.sign_out(&staff.access, token).await;
    }
    let cleared = crate::session::cookie("", 0);
    see_other("/admin/sign-in", &cleared.into_iter().collect::<Vec<_>>())
}

/// One row of a request list.
struct Row {
    id: String,
    short: String,
    kind: String,
    status: String,
    received: String,
    due: String,
    overdue: bool,
    soon: bool,
}

fn row(v: &steward_core::request::RequestView, now: OffsetDateTime) -> Row {
    let open = !v.status.is_final();
    Row {
        id: v.id.to_string(),
        short: v
            .id
            .to_string()
            .chars()
            .rev()
            .take(6)
            .collect::<String>()
            .chars()
            .rev()
            .collect(),
        kind: v.kind.as_str().to_owned(),
        status: v.status.as_str().to_owned(),
        received: minute(v.received_at),
        due: minute(v.due_at),
        overdue: open && v.due_at <= now,
        soon: open && v.due_at > now && v.due_at <= now + time::Duration::days(3),
    }
}

/// The last audit verification per process: (when, intact, what to show). Verifying a long
/// trail takes seconds, so the dashboard does it at most every five minutes.
static AUDIT_CHECK: Mutex<Option<(OffsetDateTime, bool, String)>> = Mutex::new(None);

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    c: Chrome,
    audit_ok: bool,
    audit_text: String,
    version: String,
    warnings: Vec<String>,
    retention: Option<Vec<(String, u64, String)>>,
    retention_note: String,
    incidents: Option<Vec<(i64, String, String)>>,
    incidents_note: String,
    requests: Option<Vec<Row>>,
    requests_note: String,
}

fn denied_note(what: &str, e: &ApiError) -> String {
    if e.status == StatusCode::FORBIDDEN {
        format!("Your role does not show {what}.")
    } else {
        format!("{what} could not be read: {}", e.message)
    }
}

async fn audit_state<S: Store>(pages: &Pages<S>, access: &Access) -> (bool, String) {
    let state = &pages.api;
    let now = state.vault.clock().now();
    if access
        .authorize(Operation::Audit, steward_core::access::Reach::Nothing)
        .is_err()
    {
        return (
            true,
            "Your role does not verify the audit trail.".to_owned(),
        );
    }
    if let Ok(guard) = AUDIT_CHECK.lock()
        && let Some((at, ok, text)) = guard.as_ref()
        && now - *at < time::Duration::minutes(5)
        && *at <= now
    {
        return (*ok, text.clone());
    }
    let mut entry = access.entry("audit.verify", now);
    entry.flagged = false;
    let (ok, text) = match state.vault.verify_audit(|_, _| {}).await {
        Ok(Ok(v)) => {
            entry.detail = Some(format!("{} entries intact", v.entries));
            (
                true,
                format!(
                    "{} entries, chain intact (checked {}).",
                    v.entries,
                    minute(now)
                ),
            )
        }
        Ok(Err(b)) => {
            entry.outcome = steward_core::audit::Outcome::Failed;
            entry.code = Some("audit-broken".to_owned());
            (
                false,
                format!("The chain is broken: {b}. Run `steward audit verify`."),
            )
        }
        Err(e) => (false, format!("The trail could not be read: {e}")),
    };
    let _ = state.vault.record(entry).await;
    if let Ok(mut guard) = AUDIT_CHECK.lock() {
        *guard = Some((now, ok, text.clone()));
    }
    (ok, text)
}

async fn dashboard<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let state = &pages.api;
    let now = state.vault.clock().now();
    let (audit_ok, audit_text) = audit_state(&pages, &staff.access).await;
    let filter = RequestFilter {
        statuses: steward_core::request::Status::open()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        ..RequestFilter::default()
    };
    let (requests, requests_note) =
        match state.requests.list(&staff.access, filter, false, 200).await {
            Ok(mut list) => {
                list.sort_by_key(|v| v.due_at);
                (
                    Some(list.iter().map(|v| row(v, now)).collect()),
                    String::new(),
                )
            }
            Err(e) => (None, denied_note("requests", &ApiError::from(e))),
        };
    let sweeper = steward_core::retention::Sweeper::new(std::sync::Arc::clone(&state.ledger), None);
    let (retention, retention_note) = match sweeper.plan(&staff.access, now).await {
        Ok(plan) => (
            Some(
                plan.lines
                    .iter()
                    .filter(|l| l.due > 0 || l.kept > 0)
                    .map(|l| {
                        let kept = match (&l.kept_because, l.kept) {
                            (_, 0) => String::new(),
                            (Some(why), n) => format!("{n} kept: {why}"),
                            (None, n) => format!("{n} kept"),
                        };
                        (l.rule.clone(), l.due, kept)
                    })
                    .collect(),
            ),
            String::new(),
        ),
        Err(e) => {
            let code = e.to_string();
            let forbidden = matches!(e, steward_core::retention::RetentionError::Denied(_));
            (
                None,
                if forbidden {
                    "Your role does not show the retention plan.".to_owned()
                } else {
                    format!("The retention plan could not be read: {code}")
                },
            )
        }
    };
    let incidents = steward_core::incidents::Incidents::new(std::sync::Arc::clone(&state.requests));
    let (incidents, incidents_note) = match incidents.list(&staff.access, true).await {
        Ok(list) => (
            Some(
                list.iter()
                    .map(|v| {
                        let clocks = v
                            .clocks
                            .iter()
                            .map(|c| {
                                format!("{} due {} ({:?})", c.audience, minute(c.due), c.status)
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        (v.incident.number, v.incident.title.clone(), clocks)
                    })
                    .collect(),
            ),
            String::new(),
        ),
        Err(e) => (None, denied_note("incidents", &ApiError::from(e))),
    };
    let d = &pages.web.declaration;
    let page = DashboardPage {
        c: staff.chrome(&pages.web, "Dashboard", "dashboard"),
        audit_ok,
        audit_text,
        version: d.policy.version.clone(),
        warnings: d.warnings.clone(),
        retention,
        retention_note,
        incidents,
        incidents_note,
        requests,
        requests_note,
    };
    render(&pages.web, StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsPage {
    c: Chrome,
    statuses: Vec<(String, String)>,
    status: String,
    rows: Vec<Row>,
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    status: Option<String>,
}

async fn requests<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let status = query
        .ok()
        .and_then(|q| q.0.status)
        .unwrap_or_else(|| "open".to_owned());
    let mut statuses = vec![
        ("open".to_owned(), "Open".to_owned()),
        ("all".to_owned(), "All".to_owned()),
    ];
    for s in steward_core::request::Status::ALL {
        statuses.push((s.as_str().to_owned(), s.as_str().to_owned()));
    }
    let filter = RequestFilter {
        statuses: match status.as_str() {
            "all" => Vec::new(),
            "open" => steward_core::request::Status::open()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            other => vec![other.to_owned()],
        },
        ..RequestFilter::default()
    };
    let now = pages.api.vault.clock().now();
    let mut c = staff.chrome(&pages.web, "Requests", "requests");
    let rows = match pages
        .api
        .requests
        .list(&staff.access, filter, false, 1000)
        .await
    {
        Ok(mut list) => {
            list.sort_by_key(|v| v.due_at);
            list.iter().map(|v| row(v, now)).collect()
        }
        Err(e) => {
            c.problem = ApiError::from(e).message;
            Vec::new()
        }
    };
    render(
        &pages.web,
        StatusCode::OK,
        &RequestsPage {
            c,
            statuses,
            status,
            rows,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/request.html")]
struct RequestPage {
    c: Chrome,
    id: String,
    facts: Vec<(String, String)>,
    open: bool,
    approvable: bool,
    extendable: bool,
    package: bool,
    reason: String,
    report: Vec<String>,
    recipients: Vec<(String, String, String, String, String)>,
    timeline: Vec<(String, String, String, String)>,
}

impl RequestPage {
    /// A one-time submission id for each form on the page.
    fn fresh(&self) -> String {
        super::random_id()
    }
}

impl PeoplePage {
    /// A one-time submission id for the look-up form.
    fn fresh(&self) -> String {
        super::random_id()
    }
}

impl KeysPage {
    /// A one-time submission id for each form on the page.
    fn fresh(&self) -> String {
        super::random_id()
    }
}

async fn request_page<S: Store>(
    pages: &Pages<S>,
    staff: &Staff,
    id: &str,
    flash: &str,
    problem: &str,
    reason: &str,
) -> Response {
    let web = &pages.web;
    let Ok(uuid) = Uuid::parse_str(id) else {
        let mut c = staff.chrome(web, "No such request", "requests");
        c.problem = "A request id is a UUID, as the request list links it.".to_owned();
        return render(
            web,
            StatusCode::NOT_FOUND,
            &Message {
                c,
                text: String::new(),
            },
        );
    };
    let (view, _work) = match pages.api.requests.get(&staff.access, uuid).await {
        Ok(v) => v,
        Err(e) => {
            let e = ApiError::from(e);
            let mut c = staff.chrome(web, "Request", "requests");
            c.problem = e.message.clone();
            return render(
                web,
                e.status,
                &Message {
                    c,
                    text: String::new(),
                },
            );
        }
    };
    let now = pages.api.vault.clock().now();
    let d = &view.details;
    let mut facts = vec![
        ("Kind".to_owned(), view.kind.as_str().to_owned()),
        ("Status".to_owned(), view.status.as_str().to_owned()),
        ("Received".to_owned(), minute(view.received_at)),
        (
            "Due".to_owned(),
            format!(
                "{}{}",
                minute(view.due_at),
                if !view.status.is_final() && view.due_at <= now {
                    " — overdue"
                } else {
                    ""
                }
            ),
        ),
        ("Verification".to_owned(), d.verification.method.clone()),
        (
            "Person (subject id)".to_owned(),
            view.subject
                .map_or_else(|| "not known to the vault".to_owned(), |s| s.to_string()),
        ),
    ];
    if let Some(p) = &d.purpose {
        facts.push(("Purpose".to_owned(), p.clone()));
    }
    if !d.categories.is_empty() {
        facts.push(("Categories".to_owned(), d.categories.join(", ")));
    }
    if d.close_account {
        facts.push(("Account closure".to_owned(), "yes".to_owned()));
    }
    if let Some(why) = &d.verification.approval_needed {
        facts.push(("Needs approval because".to_owned(), why.clone()));
    }
    let mut report = Vec::new();
    if let Some(o) = &d.outcome {
        report.push(format!(
            "The person was {}found in the vault.",
            if o.found { "" } else { "not " }
        ));
        for c in &o.removed {
            report.push(format!("Removed: {c}"));
        }
        for r in &o.retained {
            report.push(format!(
                "Kept: {}",
                serde_json::to_string(r).unwrap_or_default()
            ));
        }
        for c in &o.changed {
            report.push(format!("Changed: {c}"));
        }
        for (c, why) in &o.not_changed {
            report.push(format!("Not changed: {c} ({why})"));
        }
        for p in &o.purposes {
            report.push(format!("Permit changed: {p}"));
        }
        if let Some(at) = o.erase_at {
            report.push(format!("Erasure scheduled for {}", minute(at)));
        }
        if let Some(r) = &o.receipt {
            report.push(format!("Erasure receipt: {r}"));
        }
        for line in &o.datasets {
            report.push(line.clone());
        }
    }
    let opt = |t: Option<OffsetDateTime>| t.map_or_else(|| "—".to_owned(), minute);
    let recipients = d
        .notifications
        .iter()
        .map(|n| {
            (
                n.recipient.clone(),
                n.channel.clone(),
                n.status.clone(),
                opt(n.delivered_at),
                opt(n.acknowledged_at),
            )
        })
        .collect();
    let timeline = d
        .history
        .iter()
        .map(|t| {
            (
                minute(t.at),
                format!("{} → {}", t.from.map_or("—", |s| s.as_str()), t.to.as_str()),
                t.actor.clone(),
                t.reason.clone(),
            )
        })
        .collect();
    let open = !view.status.is_final();
    let mut c = staff.chrome(web, &format!("Request {}", view.id), "requests");
    flash.clone_into(&mut c.flash);
    problem.clone_into(&mut c.problem);
    let page = RequestPage {
        c,
        id: view.id.to_string(),
        facts,
        open,
        approvable: view.status == steward_core::request::Status::AwaitingApproval,
        extendable: d.extension.is_none(),
        package: matches!(
            view.kind,
            steward_policy::declaration::Right::Access
                | steward_policy::declaration::Right::Portability
        ) && view.subject.is_some(),
        reason: reason.to_owned(),
        report,
        recipients,
        timeline,
    };
    render(web, StatusCode::OK, &page)
}

async fn request<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    request_page(&pages, &staff, &id, "", "", "").await
}

async fn decide<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/admin/requests/{id}/{action}");
    let staff = match staff(&pages, &headers, &Method::POST, Some((&path, &form))).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return request_page(&pages, &staff, &id, "", "", "").await;
    };
    let reason = form.get("reason");
    let requests = &pages.api.requests;
    let result = match action.as_str() {
        "approve" => requests
            .approve(&staff.access, uuid)
            .await
            .map(|_| "Approved and carried out."),
        "deny" => requests
            .deny(&staff.access, uuid, reason)
            .await
            .map(|_| "Refused; the person is told why."),
        "extend" => requests
            .extend(&staff.access, uuid, reason)
            .await
            .map(|_| "The deadline is extended; the person is told why."),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match result {
        Ok(done) => request_page(&pages, &staff, &id, done, "", "").await,
        Err(e) => {
            let e = ApiError::from(e);
            request_page(&pages, &staff, &id, "", &e.message, reason).await
        }
    }
}

async fn package<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let requests = &pages.api.requests;
    let result = async {
        let uuid = Uuid::parse_str(&id).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-id",
                "a request id is a UUID",
            )
        })?;
        let (view, _) = requests.get(&staff.access, uuid).await?;
        Ok::<_, ApiError>(
            requests
                .gather(&staff.access, Some(uuid), view.subject, &[])
                .await?,
        )
    }
    .await;
    match result {
        Ok(data) => crate::requests::zip_response(
            std::sync::Arc::clone(&pages.api.vault),
            data,
            &format!("package-{id}.zip"),
        ),
        Err(e) => {
            let mut c = staff.chrome(&pages.web, "Access package", "requests");
            c.problem = e.message.clone();
            render(
                &pages.web,
                e.status,
                &Message {
                    c,
                    text: String::new(),
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "admin/people.html")]
struct PeoplePage {
    c: Chrome,
    email: String,
    purpose: String,
    reason: String,
    purposes: Vec<(String, String)>,
    problems: Problems,
    result: Option<Vec<(String, String, String)>>,
}

async fn people<S: Store>(
    State(pages): State<Pages<S>>,
    method: Method,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let posted = method == Method::POST;
    let staff = match staff(
        &pages,
        &headers,
        &method,
        posted.then_some(("/admin/people", &form)),
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let web = &pages.web;
    let d = &web.declaration;
    let mut page = PeoplePage {
        c: staff.chrome(web, "People", "people"),
        email: form.get("email").to_owned(),
        purpose: form.get("purpose").to_owned(),
        reason: form.get("reason").to_owned(),
        purposes: d
            .purposes
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect(),
        problems: Problems::default(),
        result: None,
    };
    if !posted {
        return render(web, StatusCode::OK, &page);
    }
    let identity = Identity::parse(IdentityKind::Email, &page.email);
    if identity.is_err() {
        page.problems
            .add("email", "Write an e-mail address like name@example.com.");
    }
    if page.purpose.is_empty() {
        page.problems
            .add("purpose", "Choose the purpose you need the data for.");
    }
    let ticket = steward_core::audit::ticket(&page.reason).map(str::to_owned);
    if ticket.is_err() {
        page.problems
            .add("reason", steward_core::audit::TicketError.to_string());
    }
    let (Ok(identity), Ok(ticket), true) = (identity, ticket, page.problems.is_empty()) else {
        return render(web, StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let mut access = staff.access.clone();
    access.ticket = Some(ticket);
    let state = &pages.api;
    if let Err(e) = crate::state::limit_lookup(state, &access, &headers, peer, &identity).await {
        page.c.problem = e.message;
        return render(web, e.status, &page);
    }
    let found = match state
        .vault
        .lookup(&access, &identity, Some(&page.purpose))
        .await
    {
        Ok(f) => f,
        Err(e) => {
            let e = ApiError::from(e);
            page.c.problem = e.message;
            return render(web, e.status, &page);
        }
    };
    let Some(subject) = found else {
        page.c.problem = "No person has this e-mail address.".to_owned();
        return render(web, StatusCode::NOT_FOUND, &page);
    };
    match state
        .ledger
        .read(&access, subject, &page.purpose, &[])
        .await
    {
        Ok(view) => {
            let name = |c: &str| {
                d.taxonomy
                    .name(steward_policy::taxonomy::Kind::Category, c)
                    .to_owned()
            };
            let mut rows: Vec<(String, String, String)> = view
                .identities
                .iter()
                .map(|(k, v)| (name(k), v.clone(), String::new()))
                .collect();
            rows.extend(
                view.fields
                    .iter()
                    .map(|f| (name(&f.category), f.value.to_string(), f.purpose.clone())),
            );
            page.result = Some(rows);
            render(web, StatusCode::OK, &page)
        }
        Err(e) => {
            let e = ApiError::from(e);
            page.c.problem = e.message;
            render(web, e.status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    c: Chrome,
    actor: String,
    purpose: String,
    since: String,
    until: String,
    rows: Vec<(u64, String, String, String, String, String)>,
    next: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
struct AuditQuery {
    actor: Option<String>,
    purpose: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
}

fn date_start(text: &str) -> Result<Option<OffsetDateTime>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| Some(d.midnight().assume_utc()))
        .map_err(|_| format!("`{text}` is not a date: write it like 2026-12-01"))
}

async fn audit<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query.map(|q| q.0).unwrap_or_default();
    let mut c = staff.chrome(&pages.web, "Audit trail", "audit");
    let keep = |v: &Option<String>| {
        v.clone()
            .unwrap_or_default()
            .chars()
            .take(120)
            .collect::<String>()
    };
    let (actor, purpose, since, until) = (
        keep(&q.actor),
        keep(&q.purpose),
        keep(&q.since),
        keep(&q.until),
    );
    let mut rows = Vec::new();
    let mut next = None;
    match (date_start(&since), date_start(&until)) {
        (Ok(from), Ok(to)) => {
            let filter = AuditFilter {
                subject: None,
                actor: Some(actor.clone()).filter(|a| !a.is_empty()),
                purpose: Some(purpose.clone()).filter(|p| !p.is_empty()),
                since: from,
                until: to,
            };
            match pages
                .api
                .vault
                .audit_entries(&staff.access, &filter, q.after.unwrap_or(0), 200)
                .await
            {
                Ok(entries) => {
                    next = (entries.len() == 200)
                        .then(|| entries.last().map(|e| e.seq))
                        .flatten();
                    rows = entries
                        .iter()
                        .map(|e| {
                            let en = &e.entry;
                            let outcome = match &en.code {
                                Some(code) => format!("{} ({code})", en.outcome.as_str()),
                                None => en.outcome.as_str().to_owned(),
                            };
                            (
                                e.seq,
                                minute(en.at),
                                format!("{} ({})", en.actor, en.role),
                                en.action.clone(),
                                outcome,
                                en.detail.clone().unwrap_or_default(),
                            )
                        })
                        .collect();
                }
                Err(e) => c.problem = ApiError::from(e).message,
            }
        }
        (Err(e), _) | (_, Err(e)) => c.problem = e,
    }
    render(
        &pages.web,
        StatusCode::OK,
        &AuditPage {
            c,
            actor,
            purpose,
            since,
            until,
            rows,
            next,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    c: Chrome,
    secret: String,
    name: String,
    role: String,
    days: String,
    roles: Vec<String>,
    problems: Problems,
    keys: Vec<(String, String, String, String, String, bool)>,
}

/// The keys page with the values of `form` kept (none for a revocation).
fn keys_form(web: &Web, staff: &Staff, form: &Form) -> KeysPage {
    KeysPage {
        c: staff.chrome(web, "API keys", "keys"),
        secret: String::new(),
        name: form.get("name").to_owned(),
        role: Some(form.get("role"))
            .filter(|r| !r.is_empty())
            .unwrap_or("service")
            .to_owned(),
        days: form.get("days").to_owned(),
        roles: Role::ALL.iter().map(|r| r.as_str().to_owned()).collect(),
        problems: Problems::default(),
        keys: Vec::new(),
    }
}

async fn keys_page<S: Store>(pages: &Pages<S>, staff: &Staff, mut page: KeysPage) -> Response {
    let status = if page.problems.is_empty() && page.c.problem.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    if let Err(d) = staff
        .access
        .authorize(Operation::Keys, steward_core::access::Reach::Nothing)
    {
        let mut c = staff.chrome(&pages.web, "API keys", "keys");
        c.problem = d.message;
        return render(
            &pages.web,
            StatusCode::FORBIDDEN,
            &Message {
                c,
                text: String::new(),
            },
        );
    }
    match pages.api.vault.store().list_api_keys().await {
        Ok(list) => {
            page.keys = list
                .iter()
                .map(|k| {
                    (
                        k.prefix.clone(),
                        k.name.clone(),
                        k.role.as_str().to_owned(),
                        minute(k.created_at),
                        k.expires_at.map_or_else(|| "never".to_owned(), minute),
                        k.revoked_at.is_some(),
                    )
                })
                .collect();
        }
        Err(e) => page.c.problem = e.to_string(),
    }
    render(&pages.web, status, &page)
}

async fn keys<S: Store>(
    State(pages): State<Pages<S>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let posted = method == Method::POST;
    let staff = match staff(
        &pages,
        &headers,
        &method,
        posted.then_some(("/admin/keys", &form)),
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut page = keys_form(&pages.web, &staff, &form);
    if !posted {
        return keys_page(&pages, &staff, page).await;
    }
    let role = Role::parse(&page.role);
    if page.name.is_empty() || page.name.chars().count() > 64 {
        page.problems
            .add("name", "Name the key (1 to 64 characters): what uses it.");
    }
    let now = pages.api.vault.clock().now();
    let expires = match page.days.parse::<i64>() {
        _ if page.days.is_empty() => Ok(None),
        Ok(d) if (1..=3650).contains(&d) => Ok(Some(now + time::Duration::days(d))),
        _ => Err(()),
    };
    if expires.is_err() {
        page.problems.add(
            "days",
            "Write a number of days from 1 to 3650, or leave it empty.",
        );
    }
    let (Some(role), Ok(expires), true) = (role, expires, page.problems.is_empty()) else {
        return keys_page(&pages, &staff, page).await;
    };
    match pages
        .api
        .vault
        .create_api_key(
            &staff.access,
            role,
            steward_core::Scope::default(),
            expires,
            &page.name,
        )
        .await
    {
        Ok(key) => {
            page.secret = key.secret.to_string();
            page.c.flash = format!("Key {} created.", key.record.prefix);
            page.name.clear();
            page.days.clear();
        }
        Err(e) => page.c.problem = ApiError::from(e).message,
    }
    keys_page(&pages, &staff, page).await
}

async fn revoke<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let staff = match staff(
        &pages,
        &headers,
        &Method::POST,
        Some(("/admin/keys/revoke", &form)),
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let prefix = form.get("prefix");
    let mut page = keys_form(&pages.web, &staff, &form);
    match pages.api.vault.revoke_api_key(&staff.access, prefix).await {
        Ok(true) => page.c.flash = format!("Key {prefix} revoked: it stops working at once."),
        Ok(false) => page.c.problem = format!("No key has the prefix {prefix}."),
        Err(e) => page.c.problem = ApiError::from(e).message,
    }
    keys_page(&pages, &staff, page).await
}

#[derive(Template)]
#[template(path = "admin/records.html")]
struct RecordsPage {
    c: Chrome,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

async fn records<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let record = steward_policy::ropa::build(&pages.web.declaration);
    let page = RecordsPage {
        c: staff.chrome(&pages.web, "Records of processing", "records"),
        headers: steward_policy::ropa::COLUMNS.to_vec(),
        rows: record.rows().into_iter().map(|r| r.to_vec()).collect(),
    };
    render(&pages.web, StatusCode::OK, &page)
}

fn download(bytes: Vec<u8>, kind: &'static str, name: &str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn records_csv<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    if let Err(r) = staff(&pages, &headers, &Method::GET, None).await {
        return r;
    }
    match steward_policy::ropa::build(&pages.web.declaration).to_csv() {
        Ok(bytes) => download(
            bytes,
            "text/csv; charset=utf-8",
            "records-of-processing.csv",
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn records_xlsx<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    if let Err(r) = staff(&pages, &headers, &Method::GET, None).await {
        return r;
    }
    match steward_policy::ropa::build(&pages.web.declaration).to_xlsx() {
        Ok(bytes) => download(
            bytes,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "records-of-processing.xlsx",
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Template)]
#[template(path = "admin/notice.html")]
struct NoticePage {
    c: Chrome,
    version: String,
    languages: String,
    intro: String,
    sections: String,
}

async fn notice<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    let staff = match staff(&pages, &headers, &Method::GET, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let web = &pages.web;
    let (intro, sections) = web.notice.html_parts("Contents");
    let page = NoticePage {
        c: staff.chrome(web, "Notice preview", "notice"),
        version: web.declaration.policy.version.clone(),
        languages: web.declaration.centre.languages.join(", "),
        intro,
        sections,
    };
    render(web, StatusCode::OK, &page)
}
