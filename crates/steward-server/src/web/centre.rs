//! The privacy centre: public pages at `/privacy` and below.
//!
//! - `GET /privacy` — the notice with its table of contents.
//! - `GET /privacy/choices` — consent purposes, the Global Privacy Control state as the
//!   browser sends it (`Sec-GPC`), and the "Do Not Sell or Share" link where a purpose sells
//!   or shares.
//! - `GET|POST /privacy/request` — a form for each right the declaration offers; then the
//!   verification by link (`/requests/verify`) or code (`POST /privacy/request/{id}/code`).
//! - `GET /privacy/me` — after verification, "My data": every field with its category,
//!   purpose and source; corrections, the package download, consent withdrawal, restriction
//!   and objection per purpose, account closure, and the person's requests with their status
//!   and due date. Every change is a request made through the request workflow, verified by
//!   the session (`steward_core::requests::PersonSession`).
//!
//! No page needs JavaScript; every form is CSRF-bound and acts once.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use steward_core::consent::Party;
use steward_core::rate_limit::Hit;
use steward_core::request::Status;
use steward_core::requests::{Intake, PersonSession, RequestError, person};
use steward_core::{Identity, IdentityKind, Store};
use steward_policy::centre::Words;
use steward_policy::declaration::{LawfulBasis, Right, Verification as Method};
use steward_policy::taxonomy::Kind as TermKind;

use super::{
    Form, MAX_FIELD, Problems, Web, check_text, csrf_for, csrf_ok, day, form_cookie, render,
    see_other, with_cookie,
};
use crate::error::ApiError;
use crate::state::{ApiState, Peer};

/// The person's session cookie (without the `__Host-` prefix used behind TLS).
pub const ME_COOKIE: &str = "steward-me";

/// The pages' state: the API's and the pages' shared parts.
pub struct Pages<S: Store> {
    /// The API's state (vault, ledger, request workflow, limits).
    pub api: ApiState<S>,
    /// Stylesheet, CSP, notice, logo.
    pub web: Arc<Web>,
}

impl<S: Store> Clone for Pages<S> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            web: Arc::clone(&self.web),
        }
    }
}

/// The privacy centre's routes.
pub fn router<S: Store>(pages: Pages<S>) -> Router {
    Router::new()
        .route("/privacy", get(notice::<S>))
        .route("/privacy/logo", get(logo::<S>))
        .route("/privacy/choices", get(choices::<S>))
        .route(
            "/privacy/request",
            get(request_form::<S>).post(request_post::<S>),
        )
        .route("/privacy/request/{id}/code", post(code_post::<S>))
        .route("/privacy/me", get(me::<S>))
        .route("/privacy/me/correct", post(me_correct::<S>))
        .route("/privacy/me/purpose", post(me_purpose::<S>))
        .route("/privacy/me/close", post(me_close::<S>))
        .route("/privacy/me/download", get(me_download::<S>))
        .route("/privacy/me/sign-out", post(me_sign_out::<S>))
        .with_state(pages)
}

/// What the layout shows on every page.
pub struct Chrome {
    /// The words in the page's language.
    pub t: Words,
    /// The page's language.
    pub lang: String,
    /// The page's title (and `<h1>`).
    pub title: String,
    /// The centre's name.
    pub name: String,
    /// Whether a logo is served.
    pub logo: bool,
    /// The current navigation entry.
    pub current: &'static str,
    /// The stylesheet.
    pub style: String,
    /// The footer line.
    pub footer: String,
}

fn chrome(web: &Web, headers: &HeaderMap, title_key: &str, current: &'static str) -> Chrome {
    let t = web.words(headers);
    let name = web.declaration.centre.name.clone();
    Chrome {
        lang: t.language.clone(),
        title: t.s(title_key).to_owned(),
        footer: t.f("footer", &[("name", &name)]),
        name,
        logo: web.logo.is_some(),
        current,
        style: web.stylesheet.clone(),
        t,
    }
}

#[derive(Template)]
#[template(path = "centre/notice.html")]
struct NoticePage {
    c: Chrome,
    notice_lang: String,
    intro: String,
    sections: String,
}

async fn notice<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    let mut c = chrome(&pages.web, &headers, "notice.title", "notice");
    c.title.clone_from(&pages.web.notice.title);
    let (intro, sections) = pages.web.notice_html(&c.t);
    render(
        &pages.web,
        StatusCode::OK,
        &NoticePage {
            c,
            notice_lang: pages.web.notice.lang.clone(),
            intro,
            sections,
        },
    )
}

async fn logo<S: Store>(State(pages): State<Pages<S>>) -> Response {
    let Some((bytes, kind)) = &pages.web.logo else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = bytes.clone().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // An SVG opened on its own runs nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

#[derive(Template)]
#[template(path = "centre/message.html")]
struct MessagePage<'a> {
    c: Chrome,
    text: String,
    bad: bool,
    button: Option<(&'a str, &'a str, &'a str)>,
}

/// A page with one message (and perhaps one button posting a token).
pub fn message(
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    title_key: &str,
    text: &str,
    button: Option<(&str, &str, &str)>,
) -> Response {
    let mut c = chrome(web, headers, title_key, "request");
    if c.title == title_key {
        title_key.clone_into(&mut c.title);
    }
    render(
        web,
        status,
        &MessagePage {
            c,
            text: text.to_owned(),
            bad: !status.is_success(),
            button,
        },
    )
}

#[derive(Template)]
#[template(path = "centre/choices.html")]
struct ChoicesPage {
    c: Chrome,
    gpc_on: bool,
    gpc_text: String,
    sale: bool,
    purposes: Vec<(String, String)>,
    mine: Vec<(String, String, String, bool)>,
    csrf: String,
}

async fn choices<S: Store>(State(pages): State<Pages<S>>, headers: HeaderMap) -> Response {
    let c = chrome(&pages.web, &headers, "choices.title", "choices");
    let d = &pages.web.declaration;
    let sent = headers
        .get("sec-gpc")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    let gpc_on = d.signals.gpc && sent;
    let gpc_text =
        c.t.s(match (d.signals.gpc, sent) {
            (false, _) => "choices.gpc.ignored",
            (true, true) => "choices.gpc.on",
            (true, false) => "choices.gpc.off",
        })
        .to_owned();
    let purposes = d
        .purposes
        .iter()
        .filter(|p| p.basis == LawfulBasis::Consent)
        .map(|p| (p.name.clone(), p.description.clone().unwrap_or_default()))
        .collect();
    let sale = offers(d, Right::OptOutSaleShare) && d.purposes.iter().any(|p| p.sale || p.share);
    let mine = match session_of(&pages, &headers).await {
        Ok(session) => {
            let requests = pages
                .api
                .requests
                .my_requests(&session)
                .await
                .unwrap_or_default();
            consent_rows(&pages, &session, &c.t, &requests)
        }
        Err(_) => Vec::new(),
    };
    render(
        &pages.web,
        StatusCode::OK,
        &ChoicesPage {
            c,
            gpc_on,
            gpc_text,
            sale,
            purposes,
            mine,
            csrf: csrf_for(&pages.api, &form_cookie(&pages.web, &headers).0),
        },
    )
}

fn offers(d: &steward_policy::Declaration, right: Right) -> bool {
    d.rights.available.contains(&right)
}

#[derive(Template)]
#[template(path = "centre/kinds.html")]
struct KindsPage {
    c: Chrome,
    intro: String,
    kinds: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "centre/request.html")]
struct RequestPage {
    c: Chrome,
    csrf: String,
    once: String,
    kind: String,
    kind_label: String,
    email_help: String,
    email: String,
    purpose: String,
    category: String,
    value: String,
    close: bool,
    verification: String,
    purposes: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    closable: bool,
    methods: Vec<(String, String)>,
    problems: Problems,
    notice: String,
}

#[derive(Debug, Deserialize)]
struct KindQuery {
    kind: Option<String>,
}

/// The purposes a request of `kind` may name, as (id, name).
/// An objection lists only the purposes Art. 21 reaches (`rules`).
fn purposes_for(
    d: &steward_policy::Declaration,
    rules: &steward_core::permit::Rules,
    kind: Right,
) -> Vec<(String, String)> {
    let objectable = |id: &str| {
        rules
            .purpose(id)
            .and_then(|i| rules.rule(i))
            .is_some_and(steward_core::permit::Rule::objectable)
    };
    d.purposes
        .iter()
        .filter(|p| match kind {
            Right::WithdrawConsent => p.basis == LawfulBasis::Consent,
            Right::Restriction => true,
            Right::Objection => objectable(&p.id),
            _ => false,
        })
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect()
}

/// The categories a person may correct, as (key, name) sorted by name: those Steward stores
/// for some purpose, but the immutable.
fn correctable(d: &steward_policy::Declaration) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for p in d.purposes.iter().filter(|p| p.stored) {
        for c in &p.categories {
            if !d
                .rights
                .immutable
                .iter()
                .any(|i| steward_policy::taxonomy::covers(i, c))
            {
                out.insert(c.clone(), d.taxonomy.name(TermKind::Category, c).to_owned());
            }
        }
    }
    let mut list: Vec<(String, String)> = out.into_iter().collect();
    list.sort_by(|a, b| a.1.cmp(&b.1));
    list
}

/// The verification methods a person may choose, as (id, label).
fn methods(d: &steward_policy::Declaration, t: &Words) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = d
        .rights
        .verification
        .iter()
        .filter(|m| **m != Method::Account)
        .map(|m| {
            let id = m.as_str().to_owned();
            let label = t.s(&format!("request.verification.{id}")).to_owned();
            (id, label)
        })
        .collect();
    if out.is_empty() {
        out.push((
            "email-link".to_owned(),
            t.s("request.verification.email-link").to_owned(),
        ));
    }
    out
}

/// The request form for `kind` with `values` kept.
#[allow(clippy::too_many_arguments)]
fn request_page(
    web: &Web,
    rules: &steward_core::permit::Rules,
    headers: &HeaderMap,
    csrf: String,
    kind: Right,
    form: &Form,
    problems: Problems,
    notice: String,
) -> RequestPage {
    let c = chrome(web, headers, "request.title", "request");
    let d = &web.declaration;
    let kind_text = kind.as_str().to_owned();
    RequestPage {
        kind_label: c.t.s(&format!("request.kind.{kind_text}")).to_owned(),
        email_help: c
            .t
            .s(if steward_core::request::needs_verification(kind) {
                "request.email.help"
            } else {
                "request.email.help.optout"
            })
            .to_owned(),
        methods: if steward_core::request::needs_verification(kind) {
            methods(d, &c.t)
        } else {
            Vec::new()
        },
        purposes: purposes_for(d, rules, kind),
        categories: if kind == Right::Rectification {
            correctable(d)
        } else {
            Vec::new()
        },
        closable: kind == Right::Erasure,
        c,
        csrf,
        once: super::random_id(),
        kind: kind_text,
        email: form.get("email").to_owned(),
        purpose: form.get("purpose").to_owned(),
        category: form.get("category").to_owned(),
        value: form.get("value").to_owned(),
        close: form.get("close_account") == "yes",
        verification: form.get("verification").to_owned(),
        problems,
        notice,
    }
}

async fn request_form<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    query: Result<Query<KindQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (cookie, set) = form_cookie(&pages.web, &headers);
    let d = &pages.web.declaration;
    let kind = query
        .ok()
        .and_then(|q| q.0.kind)
        .and_then(|k| Right::parse(&k))
        .filter(|k| offers(d, *k));
    let response = match kind {
        Some(kind) => {
            let page = request_page(
                &pages.web,
                pages.api.ledger.rules(),
                &headers,
                csrf_for(&pages.api, &cookie),
                kind,
                &Form::default(),
                Problems::default(),
                String::new(),
            );
            render(&pages.web, StatusCode::OK, &page)
        }
        None => {
            let c = chrome(&pages.web, &headers, "request.title", "request");
            let kinds = d
                .rights
                .available
                .iter()
                .map(|k| {
                    (
                        k.as_str().to_owned(),
                        c.t.s(&format!("request.kind.{}", k.as_str())).to_owned(),
                    )
                })
                .collect();
            let intro = c.t.f(
                "request.intro",
                &[("deadline", &c.t.duration(&d.rights.deadline))],
            );
            render(&pages.web, StatusCode::OK, &KindsPage { c, intro, kinds })
        }
    };
    with_cookie(response, set)
}

#[derive(Template)]
#[template(path = "centre/sent.html")]
struct SentPage {
    c: Chrome,
    text: String,
    problem: String,
    code_for: Option<String>,
    csrf: String,
    once: String,
}

/// Where a core refusal belongs on the request form: (field, words) — a field's problem, or
/// `""` for the form as a whole.
pub(crate) fn place(e: &ApiError, t: &Words) -> (&'static str, String) {
    match e.code {
        "invalid-email" => ("email", t.s("error.email").to_owned()),
        "unknown-purpose" | "purpose-not-applicable" => ("purpose", e.message.clone()),
        "immutable" | "unknown-category" => ("category", e.message.clone()),
        _ => ("", said(e, t)),
    }
}

/// A refusal in the centre's words where it has them (links, limits, failures), else the
/// core's sentence.
pub fn said(e: &ApiError, t: &Words) -> String {
    match e.code {
        "used-token" => t.s("link.used").to_owned(),
        "expired-token" => t.s("link.expired").to_owned(),
        "forged-token" | "malformed-token" | "wrong-token" | "wrong-request" => {
            t.s("link.altered").to_owned()
        }
        "rate-limited" => t.f(
            "error.busy",
            &[("seconds", &e.retry_after.unwrap_or(60).to_string())],
        ),
        "internal" => t.s("error.generic").to_owned(),
        _ => e.message.clone(),
    }
}

async fn request_post<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let web = &pages.web;
    let state = &pages.api;
    if !super::same_site(&headers) {
        return message(
            web,
            &headers,
            StatusCode::FORBIDDEN,
            "form.foreign.title",
            web.words(&headers).s("form.foreign"),
            None,
        );
    }
    let form = Form::parse(&body);
    let (cookie, set) = form_cookie(web, &headers);
    let d = &web.declaration;
    let Some(kind) = Right::parse(form.get("kind")).filter(|k| offers(d, *k)) else {
        return with_cookie(see_other("/privacy/request", &[]), set);
    };
    let csrf = csrf_for(state, &cookie);
    let t = web.words(&headers);
    let again = |problems: Problems, notice: String| {
        let page = request_page(
            web,
            state.ledger.rules(),
            &headers,
            csrf.clone(),
            kind,
            &form,
            problems,
            notice,
        );
        with_cookie(
            render(web, StatusCode::UNPROCESSABLE_ENTITY, &page),
            set.clone(),
        )
    };
    if !csrf_ok(state, &cookie, form.get("csrf")) {
        return again(Problems::default(), t.s("request.stale").to_owned());
    }
    let mut problems = Problems::default();
    check_text(&mut problems, &t, "email", form.get("email"), true, 320);
    if steward_core::request::takes_purpose(kind) && kind != Right::Restriction {
        check_text(&mut problems, &t, "purpose", form.get("purpose"), true, 200);
    } else {
        check_text(
            &mut problems,
            &t,
            "purpose",
            form.get("purpose"),
            false,
            200,
        );
    }
    if kind == Right::Rectification {
        check_text(
            &mut problems,
            &t,
            "category",
            form.get("category"),
            true,
            200,
        );
        check_text(
            &mut problems,
            &t,
            "value",
            form.get("value"),
            true,
            MAX_FIELD,
        );
        if problems.of("value").is_empty()
            && form.get("category") == IdentityKind::Email.category()
            && Identity::parse(IdentityKind::Email, form.get("value")).is_err()
        {
            problems.add("value", t.s("error.email.change"));
        }
    }
    if problems.0.iter().all(|(f, _)| f != "email")
        && Identity::parse(IdentityKind::Email, form.get("email")).is_err()
    {
        problems.add("email", t.s("error.email"));
    }
    if !problems.is_empty() {
        return again(problems, String::new());
    }
    // The same limits as `POST /requests`: per client address and per address asked for.
    let now = state.vault.clock().now();
    let access = person();
    let ip = crate::state::ip_text(state.guard.client(&headers, peer));
    let email = Identity::parse(IdentityKind::Email, form.get("email"))
        .map_or_else(|_| String::new(), |i| i.value().to_owned());
    let hits = [
        Hit {
            limit: "request-ip",
            rate: state.guard.rates.request_ip,
            value: ip.as_bytes(),
        },
        Hit {
            limit: "request-email",
            rate: state.guard.rates.request_identity,
            value: email.as_bytes(),
        },
    ];
    if let Err(e) = crate::state::limit(state, &hits, || access.entry("request.create", now)).await
    {
        return again(Problems::default(), said(&e, &t));
    }
    // Claimed only now, within the limits: an anonymous caller cannot fill the store with ids.
    if !super::first_submission(state, form.get("once")).await {
        return with_cookie(
            message(
                web,
                &headers,
                StatusCode::CONFLICT,
                "request.sent.title",
                t.s("request.once"),
                None,
            ),
            set,
        );
    }
    let purpose = Some(form.get("purpose").to_owned()).filter(|p| !p.is_empty());
    let intake = Intake {
        kind: kind.as_str().to_owned(),
        email: form.get("email").to_owned(),
        purpose,
        changes: if kind == Right::Rectification {
            vec![(
                form.get("category").to_owned(),
                form.get("value").to_owned(),
            )]
        } else {
            Vec::new()
        },
        close_account: kind == Right::Erasure && form.get("close_account") == "yes",
        verification: if steward_core::request::needs_verification(kind) {
            Some(form.get("verification").to_owned()).filter(|v| !v.is_empty())
        } else {
            None
        },
    };
    match state.requests.create(&access, intake, false).await {
        Ok(view) => {
            let title = if steward_core::request::needs_verification(kind) {
                "request.sent.title"
            } else {
                "request.received.title"
            };
            let c = chrome(web, &headers, title, "request");
            let due = day(view.due_at);
            let by_code = view.details.verification.method == Method::EmailCode.as_str();
            let text = if steward_core::request::needs_verification(kind) {
                let expires = c.t.duration(&d.rights.verification_expires);
                c.t.f("request.sent.text", &[("expires", &expires), ("due", &due)])
            } else {
                c.t.f("request.sent.optout", &[("due", &due)])
            };
            let page = SentPage {
                c,
                text,
                problem: String::new(),
                code_for: by_code.then(|| view.id.to_string()),
                csrf: csrf.clone(),
                once: super::random_id(),
            };
            with_cookie(render(web, StatusCode::OK, &page), set)
        }
        Err(e) => {
            let e = ApiError::from(e);
            let (field, words) = place(&e, &t);
            let mut problems = Problems::default();
            if field.is_empty() {
                again(problems, words)
            } else {
                problems.add(field, words);
                again(problems, String::new())
            }
        }
    }
}

async fn code_post<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let web = &pages.web;
    let state = &pages.api;
    let form = Form::parse(&body);
    let (cookie, set) = form_cookie(web, &headers);
    let t = web.words(&headers);
    let csrf = csrf_for(state, &cookie);
    let again = |status: StatusCode, problem: String| {
        let c = chrome(web, &headers, "request.sent.title", "request");
        let page = SentPage {
            text: c.t.s("request.code").to_owned(),
            c,
            problem,
            code_for: Some(id.clone()),
            csrf: csrf.clone(),
            once: super::random_id(),
        };
        with_cookie(render(web, status, &page), set.clone())
    };
    if !super::same_site(&headers) || !csrf_ok(state, &cookie, form.get("csrf")) {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            t.s("request.stale").to_owned(),
        );
    }
    let now = state.vault.clock().now();
    let ip = crate::state::ip_text(state.guard.client(&headers, peer));
    let hit = Hit {
        limit: "request-ip",
        rate: state.guard.rates.request_ip,
        value: ip.as_bytes(),
    };
    if let Err(e) =
        crate::state::limit(state, &[hit], || person().entry("request.verify", now)).await
    {
        return again(e.status, said(&e, &t));
    }
    let Ok(request) = uuid::Uuid::parse_str(&id) else {
        return again(StatusCode::NOT_FOUND, RequestError::NotFound.to_string());
    };
    if !super::first_submission(state, form.get("once")).await {
        return message(
            web,
            &headers,
            StatusCode::CONFLICT,
            "request.sent.title",
            t.s("request.once"),
            None,
        );
    }
    match state.requests.verify_code(request, form.get("code")).await {
        Ok(_) => open_session(state, web, request).await,
        Err(e) => {
            let e = ApiError::from(e);
            again(e.status, said(&e, &t))
        }
    }
}

/// Opens the privacy-centre session of the person who verified `request` and sends them to
/// "My data"; a failure says so on a page.
pub async fn open_session<S: Store>(
    state: &ApiState<S>,
    web: &Web,
    request: uuid::Uuid,
) -> Response {
    match state.requests.open_session(request).await {
        Ok((token, expires)) => {
            let max_age = (expires - state.vault.clock().now()).whole_seconds().max(0);
            let cookies: Vec<HeaderValue> =
                web.cookie(ME_COOKIE, &token, max_age).into_iter().collect();
            see_other("/privacy/me", &cookies)
        }
        Err(e) => {
            let e = ApiError::from(e);
            let t = web.words(&HeaderMap::new());
            message(
                web,
                &HeaderMap::new(),
                e.status,
                "link.broken",
                &said(&e, &t),
                None,
            )
        }
    }
}

/// The person's session, or why there is none (`None`: no cookie at all).
async fn session_of<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
) -> Result<PersonSession, Option<RequestError>> {
    let token = pages.web.read_cookie(headers, ME_COOKIE).ok_or(None)?;
    pages.api.requests.session(token).await.map_err(Some)
}

/// One row of "Your details".
pub struct FieldRow {
    category: String,
    category_name: String,
    value: String,
    purpose_name: String,
    source: String,
    label: String,
    immutable: Option<String>,
}

/// What "My data" shows of a signed-in person.
pub struct MeView {
    line: String,
    fields: Vec<FieldRow>,
    can_correct: bool,
    consents: Vec<(String, String, String, bool)>,
    purposes: Vec<(String, String, String, bool, bool)>,
    requests: Vec<(String, String, String, String)>,
    can_close: bool,
    closing: String,
    close_text: String,
}

#[derive(Template)]
#[template(path = "centre/me.html")]
struct MePage {
    c: Chrome,
    session: Option<MeView>,
    csrf: String,
    done: String,
    problem: String,
    close_problem: String,
    kept_category: String,
    kept_value: String,
}

impl MePage {
    /// A one-time submission id for each form on the page.
    fn fresh(&self) -> String {
        super::random_id()
    }

    /// What the person had typed when their session ended.
    fn kept_note(&self) -> String {
        self.c.t.f("me.kept", &[("value", &self.kept_value)])
    }
}

impl ChoicesPage {
    /// A one-time submission id for each form on the page.
    fn fresh(&self) -> String {
        super::random_id()
    }
}

#[derive(Debug, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// What "My data" shows now: (page, status).
async fn me_page<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    csrf: String,
    done: &str,
) -> MePage {
    let c = chrome(&pages.web, headers, "me.title", "me");
    let mut page = MePage {
        session: None,
        csrf,
        done: String::new(),
        problem: String::new(),
        close_problem: String::new(),
        kept_category: String::new(),
        kept_value: String::new(),
        c,
    };
    let session = match session_of(pages, headers).await {
        Ok(s) => s,
        Err(None) => return page,
        Err(Some(_)) => {
            page.problem = page.c.t.s("me.ended").to_owned();
            return page;
        }
    };
    page.done = match done {
        "correct" => page.c.t.s("me.edit.done").to_owned(),
        "withdraw" => page.c.t.s("me.consents.withdrawn").to_owned(),
        "close" => page.c.t.s("me.close.done").to_owned(),
        "purpose" => page.c.t.s("request.confirmed.text").to_owned(),
        _ => String::new(),
    };
    match me_view(pages, &session, &page.c.t).await {
        Ok(view) => page.session = Some(view),
        Err(e) => {
            let e = ApiError::from(e);
            tracing::error!(target: "steward::web", code = e.code, "My data could not be read");
            page.problem = page.c.t.s("error.generic").to_owned();
        }
    }
    page
}

/// The person's consent purposes: (id, name, state in words, whether it can be withdrawn).
/// `mine` are the person's requests (a withdrawal under way shows as such).
fn consent_rows<S: Store>(
    pages: &Pages<S>,
    session: &PersonSession,
    t: &Words,
    mine: &[steward_core::request::RequestView],
) -> Vec<(String, String, String, bool)> {
    let d = &pages.web.declaration;
    let Some(subject) = session.subject else {
        return Vec::new();
    };
    d.purposes
        .iter()
        .filter(|p| p.basis == LawfulBasis::Consent)
        .map(|p| {
            let code = pages
                .api
                .ledger
                .permit(&Party::Subject(subject), &p.id)
                .map(|d| d.reason.code())
                .unwrap_or("no-consent");
            let withdrawing = mine.iter().any(|r| {
                r.kind == Right::WithdrawConsent
                    && !r.status.is_final()
                    && r.details.purpose.as_deref() == Some(p.id.as_str())
            });
            let (state, given) = match code {
                "withdrawn" => (t.s("choices.state.withdrawn"), false),
                _ if withdrawing => (t.s("choices.state.withdrawing"), false),
                "consent-given" => (t.s("choices.state.given"), true),
                "not-confirmed" => (t.s("choices.state.pending"), true),
                _ => (t.s("choices.state.none"), false),
            };
            (
                p.id.clone(),
                p.name.clone(),
                state.to_owned(),
                given && offers(d, Right::WithdrawConsent),
            )
        })
        .collect()
}

async fn me_view<S: Store>(
    pages: &Pages<S>,
    session: &PersonSession,
    t: &Words,
) -> Result<MeView, RequestError> {
    let d = &pages.web.declaration;
    let requests = &pages.api.requests;
    let data = requests.my_data(session).await?;
    let mine = requests.my_requests(session).await?;
    let name_of = |p: &str| {
        d.purposes
            .iter()
            .find(|x| x.id == p)
            .map_or_else(|| p.to_owned(), |x| x.name.clone())
    };
    let can_correct = offers(d, Right::Rectification);
    // Alive: the vault holds them. Erased with data kept by law: those fields only.
    let alive = !data.identities.is_empty() || !data.fields.is_empty();
    let held_reason = t.s("me.held").to_owned();
    let fields = data
        .identities
        .iter()
        .map(|(kind, value)| {
            let category = IdentityKind::parse(kind)
                .map_or_else(|_| kind.clone(), |k| k.category().to_owned());
            (
                category,
                value.clone(),
                t.s("me.identity").to_owned(),
                t.s("me.provided").to_owned(),
                None,
            )
        })
        .chain(data.fields.iter().map(|f| {
            (
                f.category.clone(),
                f.value.to_string(),
                name_of(&f.purpose),
                t.source(&f.source),
                None,
            )
        }))
        .chain(data.held.iter().map(|f| {
            (
                f.category.clone(),
                f.value.to_string(),
                name_of(&f.purpose),
                t.source(&f.source),
                Some(held_reason.clone()),
            )
        }))
        .map(|(category, value, purpose_name, source, held)| {
            let category_name = d.taxonomy.name(TermKind::Category, &category).to_owned();
            let immutable = held.or_else(|| {
                d.rights
                    .immutable
                    .iter()
                    .any(|i| steward_policy::taxonomy::covers(i, &category))
                    .then(|| t.f("me.immutable", &[("reason", t.s("me.immutable.reason"))]))
            });
            FieldRow {
                label: t.f("me.edit.label", &[("category", &category_name)]),
                category,
                category_name,
                value,
                purpose_name,
                source,
                immutable,
            }
        })
        .collect();
    // What is under way: an open request of a kind for a purpose.
    let open = |kind: Right, purpose: &str| {
        mine.iter().any(|r| {
            r.kind == kind && !r.status.is_final() && r.details.purpose.as_deref() == Some(purpose)
        })
    };
    let rules = pages.api.ledger.rules();
    let consents = if alive {
        consent_rows(pages, session, t, &mine)
    } else {
        Vec::new()
    };
    let mut purposes = Vec::new();
    for p in d.purposes.iter().filter(|_| alive) {
        let objectable = rules
            .purpose(&p.id)
            .and_then(|i| rules.rule(i))
            .is_some_and(steward_core::permit::Rule::objectable);
        let code = session.subject.map_or("", |subject| {
            pages
                .api
                .ledger
                .permit(&Party::Subject(subject), &p.id)
                .map_or("", |d| d.reason.code())
        });
        let state = match code {
            "restricted" => t.s("me.state.restricted").to_owned(),
            "objected" => t.s("me.state.objected").to_owned(),
            _ if open(Right::Restriction, &p.id) || open(Right::Objection, &p.id) => {
                t.s("me.state.pending").to_owned()
            }
            _ => String::new(),
        };
        let settled = !state.is_empty();
        let restrict = offers(d, Right::Restriction) && !settled;
        let object = offers(d, Right::Objection) && objectable && !settled;
        if restrict || object || settled {
            purposes.push((p.id.clone(), p.name.clone(), state, restrict, object));
        }
    }
    // An account being closed: when its erasure is set, and no second closure offered.
    let closing = mine
        .iter()
        .find(|r| r.kind == Right::Erasure && r.details.close_account && r.status != Status::Denied)
        .map(|r| {
            let at = r
                .details
                .outcome
                .as_ref()
                .and_then(|o| o.erase_at)
                .unwrap_or(r.due_at);
            t.f("me.closing", &[("date", &day(at))])
        });
    let requests_rows = mine
        .iter()
        .map(|r| {
            let what = t.s(&format!("request.kind.{}", r.kind.as_str())).to_owned();
            let what = match &r.details.purpose {
                Some(p) => format!("{what}: {}", name_of(p)),
                None => what,
            };
            (
                what,
                t.s(&format!("status.{}", r.status.as_str())).to_owned(),
                day(r.received_at),
                day(r.due_at),
            )
        })
        .collect();
    let delay = requests.closure_delay();
    let close_text = t.f(
        "me.close.text",
        &[(
            "delay",
            &delay.map_or_else(
                || t.s("me.close.now").to_owned(),
                |delay| t.f("me.close.delay", &[("delay", &t.duration(&delay))]),
            ),
        )],
    );
    let until = super::minute(session.expires_at);
    Ok(MeView {
        line: t.f(
            "me.session",
            &[("email", session.email()), ("until", &until)],
        ),
        fields,
        can_correct: can_correct && alive,
        consents,
        purposes,
        requests: requests_rows,
        can_close: offers(d, Right::Erasure) && alive && closing.is_none(),
        closing: closing.unwrap_or_default(),
        close_text,
    })
}

/// The limit on reading "My data" (each view and download reads the person's data and is
/// audited): per client address, at the consent endpoints' rate.
async fn limit_view<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> Result<(), Response> {
    let state = &pages.api;
    let now = state.vault.clock().now();
    let ip = crate::state::ip_text(state.guard.client(headers, peer));
    let hit = Hit {
        limit: "my-data-ip",
        rate: state.guard.rates.consent_ip,
        value: ip.as_bytes(),
    };
    crate::state::limit(state, &[hit], || person().entry("person.view", now))
        .await
        .map_err(|e| {
            let t = pages.web.words(headers);
            message(
                &pages.web,
                headers,
                e.status,
                "me.title",
                &said(&e, &t),
                None,
            )
        })
}

async fn me<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    query: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = limit_view(&pages, &headers, peer).await {
        return r;
    }
    let (cookie, set) = form_cookie(&pages.web, &headers);
    let done = query.ok().and_then(|q| q.0.done).unwrap_or_default();
    let page = me_page(&pages, &headers, csrf_for(&pages.api, &cookie), &done).await;
    with_cookie(render(&pages.web, StatusCode::OK, &page), set)
}

/// The checks every "My data" change shares: same site, the CSRF token, a live session, a
/// first submission. `Err` is the page to answer with (values kept).
async fn me_change<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    form: &Form,
) -> Result<PersonSession, Response> {
    let web = &pages.web;
    let (cookie, set) = form_cookie(web, headers);
    let csrf = csrf_for(&pages.api, &cookie);
    let refuse = |mut page: MePage, problem: String| {
        page.problem = problem;
        page.kept_category = form.get("category").to_owned();
        page.kept_value = form.get("value").to_owned();
        with_cookie(
            render(web, StatusCode::UNPROCESSABLE_ENTITY, &page),
            set.clone(),
        )
    };
    let t = web.words(headers);
    if !super::same_site(headers) || !csrf_ok(&pages.api, &cookie, form.get("csrf")) {
        let page = me_page(pages, headers, csrf, "").await;
        return Err(refuse(page, t.s("request.stale").to_owned()));
    }
    let Ok(session) = session_of(pages, headers).await else {
        let page = me_page(pages, headers, csrf, "").await;
        return Err(refuse(page, t.s("me.ended").to_owned()));
    };
    // The same limits as any request: per client address and per (verified) address.
    let now = pages.api.vault.clock().now();
    let ip = crate::state::ip_text(pages.api.guard.client(headers, peer));
    let hits = [
        Hit {
            limit: "request-ip",
            rate: pages.api.guard.rates.request_ip,
            value: ip.as_bytes(),
        },
        Hit {
            limit: "request-email",
            rate: pages.api.guard.rates.request_identity,
            value: session.email().as_bytes(),
        },
    ];
    if let Err(e) =
        crate::state::limit(&pages.api, &hits, || person().entry("request.create", now)).await
    {
        let page = me_page(pages, headers, csrf, "").await;
        return Err(refuse(page, said(&e, &t)));
    }
    if !super::first_submission(&pages.api, form.get("once")).await {
        let page = me_page(pages, headers, csrf, "").await;
        return Err(refuse(page, t.s("request.once").to_owned()));
    }
    Ok(session)
}

/// Makes a request in the person's session and goes back to "My data" saying `done`; a
/// refusal is shown on the page with the values kept.
async fn in_session<S: Store>(
    pages: &Pages<S>,
    headers: &HeaderMap,
    form: &Form,
    session: &PersonSession,
    intake: Intake,
    done: &str,
) -> Response {
    match pages.api.requests.create_in_session(session, intake).await {
        Ok(_) => see_other(&format!("/privacy/me?done={done}"), &[]),
        Err(e) => {
            let e = ApiError::from(e);
            let (cookie, set) = form_cookie(&pages.web, headers);
            let mut page = me_page(pages, headers, csrf_for(&pages.api, &cookie), "").await;
            let t = pages.web.words(headers);
            page.problem = place(&e, &t).1;
            page.kept_category = form.get("category").to_owned();
            page.kept_value = form.get("value").to_owned();
            with_cookie(render(&pages.web, e.status, &page), set)
        }
    }
}

fn intake(kind: Right) -> Intake {
    Intake {
        kind: kind.as_str().to_owned(),
        email: String::new(),
        purpose: None,
        changes: Vec::new(),
        close_account: false,
        verification: None,
    }
}

async fn me_correct<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let session = match me_change(&pages, &headers, peer, &form).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let t = pages.web.words(&headers);
    let mut problems = Problems::default();
    check_text(
        &mut problems,
        &t,
        "value",
        form.get("value"),
        true,
        MAX_FIELD,
    );
    check_text(
        &mut problems,
        &t,
        "category",
        form.get("category"),
        true,
        200,
    );
    if problems.is_empty()
        && form.get("category") == IdentityKind::Email.category()
        && Identity::parse(IdentityKind::Email, form.get("value")).is_err()
    {
        problems.add("value", t.s("error.email.change"));
    }
    if let Some((_, problem)) = problems.0.first() {
        let (cookie, set) = form_cookie(&pages.web, &headers);
        let mut page = me_page(&pages, &headers, csrf_for(&pages.api, &cookie), "").await;
        page.problem = problem.clone();
        page.kept_category = form.get("category").to_owned();
        return with_cookie(
            render(&pages.web, StatusCode::UNPROCESSABLE_ENTITY, &page),
            set,
        );
    }
    let mut i = intake(Right::Rectification);
    i.changes = vec![(
        form.get("category").to_owned(),
        form.get("value").to_owned(),
    )];
    in_session(&pages, &headers, &form, &session, i, "correct").await
}

async fn me_purpose<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let session = match me_change(&pages, &headers, peer, &form).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let kind = match form.get("kind") {
        "withdraw-consent" => Right::WithdrawConsent,
        "objection" => Right::Objection,
        _ => Right::Restriction,
    };
    let mut i = intake(kind);
    i.purpose = Some(form.get("purpose").to_owned());
    let done = if kind == Right::WithdrawConsent {
        "withdraw"
    } else {
        "purpose"
    };
    in_session(&pages, &headers, &form, &session, i, done).await
}

async fn me_close<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    if form.get("confirm") != "yes" {
        let (cookie, set) = form_cookie(&pages.web, &headers);
        let mut page = me_page(&pages, &headers, csrf_for(&pages.api, &cookie), "").await;
        page.close_problem = page.c.t.s("error.required").to_owned();
        page.problem = page.c.t.s("error.title").to_owned();
        return with_cookie(
            render(&pages.web, StatusCode::UNPROCESSABLE_ENTITY, &page),
            set,
        );
    }
    let session = match me_change(&pages, &headers, peer, &form).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let mut i = intake(Right::Erasure);
    i.close_account = true;
    in_session(&pages, &headers, &form, &session, i, "close").await
}

async fn me_download<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    Peer(peer): Peer,
) -> Response {
    if let Err(r) = limit_view(&pages, &headers, peer).await {
        return r;
    }
    let Ok(session) = session_of(&pages, &headers).await else {
        return see_other("/privacy/me", &[]);
    };
    match pages.api.requests.my_data(&session).await {
        Ok(data) => crate::requests::zip_response(
            Arc::clone(&pages.api.vault),
            data,
            &format!("my-data-{}.zip", day(pages.api.vault.clock().now())),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn me_sign_out<S: Store>(
    State(pages): State<Pages<S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let (cookie, _) = form_cookie(&pages.web, &headers);
    if !super::same_site(&headers) || !csrf_ok(&pages.api, &cookie, form.get("csrf")) {
        return see_other("/privacy/me", &[]);
    }
    if let Some(token) = pages.web.read_cookie(&headers, ME_COOKIE)
        && let Err(e) = pages.api.requests.close_session(token).await
    {
        let e = ApiError::from(e);
        tracing::error!(target: "steward::web", code = e.code, "a session could not be ended");
        let t = pages.web.words(&headers);
        return message(
            &pages.web,
            &headers,
            e.status,
            "me.title",
            &said(&e, &t),
            None,
        );
    }
    let cleared: Vec<HeaderValue> = pages.web.cookie(ME_COOKIE, "", 0).into_iter().collect();
    see_other("/privacy", &cleared)
}
