//! The pages people and staff use in a browser: the privacy centre (`/privacy` and below,
//! [`centre`]) and the admin console (`/admin`, [`console`]). Server-rendered from askama
//! templates compiled into the binary (`templates/`), one stylesheet inlined and allowed by
//! its hash, no JavaScript, nothing loaded from another site.
//!
//! Every form carries a CSRF token bound to an `HttpOnly`, `SameSite=Strict` cookie (the
//! staff session's, or a form cookie for people) and a one-time submission id, so a page
//! elsewhere cannot post in a browser's name and a form sent twice acts once. Cookies are
//! `Secure` whenever the public address is `https://`.

pub mod centre;
pub mod console;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use steward_core::Store;
use steward_core::rate_limit::{Hit, Verdict};
use steward_policy::Declaration;
use steward_policy::centre::Words;
use steward_policy::notice::Notice;

use crate::state::ApiState;

/// The most a form field may hold, in characters (a free-text reason, a new value).
pub const MAX_FIELD: usize = 2000;

/// What every page shares, built once per declaration.
pub struct Web {
    /// The declaration the pages are built from.
    pub declaration: Arc<Declaration>,
    /// The one stylesheet (the notice's, the centre's, the accent colour).
    pub stylesheet: String,
    /// The Content-Security-Policy allowing exactly that stylesheet.
    pub csp: HeaderValue,
    /// The notice.
    pub notice: Notice,
    /// The notice's HTML (intro with its table of contents, and sections) for each offered
    /// language's "Contents" heading, rendered once.
    pub notice_parts: std::collections::HashMap<String, (String, String)>,
    /// The logo's bytes and type, when `[centre] logo` is set and `serve` read it.
    pub logo: Option<(Vec<u8>, &'static str)>,
    /// Whether cookies are `Secure` (the public address is `https://`).
    pub secure: bool,
}

/// The centre's own rules, after the notice's.
const CENTRE_STYLE: &str = include_str!("../../templates/steward.css");

impl Web {
    /// The pages' shared parts for `declaration`, served at `public_url`.
    pub fn new(
        declaration: &Declaration,
        public_url: &str,
        logo: Option<(Vec<u8>, &'static str)>,
    ) -> Self {
        // The accent colours buttons, the bar and (on screens in light mode) links; in dark
        // mode links and outlines keep the notice's light blue, readable on the dark page.
        let accent = &declaration.centre.accent;
        let stylesheet = format!(
            "{}\n{CENTRE_STYLE}\n:root {{ --brand: {accent}; }}\n@media screen and (prefers-color-scheme: light) {{ :root {{ --accent: {accent}; }} }}\n",
            Notice::stylesheet(),
        );
        let csp = HeaderValue::from_str(&crate::content_security_policy(&stylesheet))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let notice = steward_policy::notice::build(declaration);
        let notice_parts = declaration
            .centre
            .languages
            .iter()
            .map(|lang| {
                let contents = declaration
                    .centre
                    .words(lang)
                    .s("notice.contents")
                    .to_owned();
                (lang.clone(), notice.html_parts(&contents))
            })
            .collect();
        Self {
            declaration: Arc::new(declaration.clone()),
            stylesheet,
            csp,
            notice,
            notice_parts,
            logo,
            secure: public_url.starts_with("https://"),
        }
    }

    /// The notice's HTML parts for the page's language (rendered once at start).
    pub fn notice_html(&self, words: &Words) -> (String, String) {
        self.notice_parts
            .get(&words.language)
            .cloned()
            .unwrap_or_else(|| self.notice.html_parts(words.s("notice.contents")))
    }

    /// The words for the browser's `Accept-Language`.
    pub fn words(&self, headers: &HeaderMap) -> Words {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let centre = &self.declaration.centre;
        centre.words(centre.negotiate(accept))
    }

    /// An HTML answer with the pages' headers: the CSP, no caching (pages hold personal data),
    /// no framing, no referrer.
    pub fn html(&self, status: StatusCode, body: String) -> Response {
        let mut response = (status, body).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` behind TLS
    /// (and then the `__Host-` prefix, which browsers hold to those rules).
    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let (prefix, secure) = if self.secure {
            ("__Host-", "; Secure")
        } else {
            ("", "")
        };
        HeaderValue::from_str(&format!(
            "{prefix}{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ))
        .ok()
    }

    /// The value of cookie `name` (with or without the `__Host-` prefix, as set).
    pub fn read_cookie<'a>(&self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        let full = if self.secure {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        };
        cookie_value(headers, &full).filter(|v| !v.is_empty())
    }
}

/// Renders `page` as an HTML answer (a template that cannot render is logged and answered
/// 500, never shown half-written).
pub fn render(web: &Web, status: StatusCode, page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(html) => web.html(status, html),
        Err(e) => {
            tracing::error!(target: "steward::web", cause = %e, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The form cookie (`steward-form`) anonymous forms are bound to, and the `Set-Cookie` to
/// send when the browser has none yet (a day long).
pub fn form_cookie(web: &Web, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match web.read_cookie(headers, FORM_COOKIE) {
        Some(v) if v.len() >= 16 && v.len() <= 64 => (v.to_owned(), None),
        _ => {
            let v = random_id();
            let set = web.cookie(FORM_COOKIE, &v, 86_400);
            (v, set)
        }
    }
}

/// `response` with the `Set-Cookie` of `set`, when there is one.
pub fn with_cookie(mut response: Response, set: Option<HeaderValue>) -> Response {
    if let Some(v) = set {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The value of cookie `name` in the request, exactly so named.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// The form cookie anonymous forms are bound to.
pub const FORM_COOKIE: &str = "steward-form";

/// A posted `application/x-www-form-urlencoded` form, as name–value pairs in order.
#[derive(Debug, Default, Clone)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses a form body (invalid UTF-8 is replaced, never refused: the page then says what
    /// is wrong with the field).
    pub fn parse(body: &[u8]) -> Self {
        Self(
            body.split(|b| *b == b'&')
                .filter(|p| !p.is_empty())
                .take(200)
                .map(|pair| {
                    let mut it = pair.splitn(2, |b| *b == b'=');
                    let name = decode(it.next().unwrap_or_default());
                    let value = decode(it.next().unwrap_or_default());
                    (name, value)
                })
                .collect(),
        )
    }

    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.trim())
    }
}

fn decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A field's problem, shown beside it.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<(String, String)>);

impl Problems {
    /// Notes that `field` has `problem`.
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.push((field.to_owned(), problem.into()));
    }

    /// The problem of `field` ("" when none).
    pub fn of(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map_or("", |(_, p)| p.as_str())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks that `value` is given (when `required`) and not longer than `max` characters.
pub fn check_text(
    problems: &mut Problems,
    words: &Words,
    field: &str,
    value: &str,
    required: bool,
    max: usize,
) {
    if required && value.is_empty() {
        problems.add(field, words.s("error.required"));
    } else if value.chars().count() > max {
        problems.add(
            field,
            words.f("error.too-long", &[("max", &max.to_string())]),
        );
    }
}

/// 16 random bytes, base64url: a form cookie, a one-time submission id.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    if steward_crypto::random_bytes(&mut b).is_err() {
        // The system's random source failed: an id that never matches a cookie.
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The CSRF token of a form bound to cookie value `bound` (a session token or a form
/// cookie): HMAC under the installation's CSRF key, so it cannot be made without the cookie.
pub fn csrf_for<S: Store>(state: &ApiState<S>, bound: &str) -> String {
    state
        .vault
        .csrf_token(&format!("form:{bound}"))
        .unwrap_or_default()
}

/// Whether `posted` is the CSRF token for cookie value `bound` (constant time).
pub fn csrf_ok<S: Store>(state: &ApiState<S>, bound: &str, posted: &str) -> bool {
    !bound.is_empty() && !posted.is_empty() && state.vault.csrf_ok(&format!("form:{bound}"), posted)
}

/// Claims one-time submission id `once`: true the first time, false when the same form was
/// already sent (a double click, a reload, a second tab) — across every process sharing the
/// store, for a day.
pub async fn first_submission<S: Store>(state: &ApiState<S>, once: &str) -> bool {
    if once.len() < 16 || once.len() > 64 {
        return false;
    }
    let hit = Hit {
        limit: "form-once",
        rate: (1, time::Duration::DAY),
        value: once.as_bytes(),
    };
    let now = state.vault.clock().now();
    matches!(
        state
            .vault
            .limits()
            .check(state.vault.store(), &[hit], now)
            .await,
        Ok(Verdict::Allowed)
    )
}

/// Whether the browser says the form came from this host (`Origin` or, where the browser
/// sends `Origin: null` — as it does for a form on a `no-referrer` page — `Sec-Fetch-Site`);
/// a form posted from another site is refused before anything is read.
pub fn same_site(headers: &HeaderMap) -> bool {
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return matches!((origin_host, host), (Some(o), Some(h)) if o == h);
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none")
}

/// A 303 to `to`, with `cookies` set.
pub fn see_other(to: &str, cookies: &[HeaderValue]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A date for people: `2026-12-24`.
pub fn day(at: time::OffsetDateTime) -> String {
    at.date().to_string()
}

/// A time for staff: `2026-12-24 10:00 UTC`.
pub fn minute(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded_pair_by_pair_and_bad_escapes_kept() {
        let f = Form::parse(b"email=a%40b.example&reason=two+words&bad=%zz&x");
        assert_eq!(f.get("email"), "a@b.example");
        assert_eq!(f.get("reason"), "two words");
        assert_eq!(f.get("bad"), "%zz");
        assert_eq!(f.get("x"), "");
        assert_eq!(f.get("absent"), "");
        assert_eq!(Form::parse(b"v=%C3%A9%2").get("v"), "é%2");
    }
}
