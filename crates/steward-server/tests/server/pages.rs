//! The privacy centre's and console's forms under bad input, over plain HTTP as a browser
//! sends them: a stale CSRF token, a double submit, missing and oversized fields, an expired
//! link, a session that ended mid-form, a form from another site, a role that may not. Each
//! gets a readable page with the values kept, and nothing is done, or done twice.

use std::collections::BTreeMap;

use serde_json::json;
use steward_core::staff::{NewStaff, totp};
use steward_core::{Access, Principal, Role};

use super::App;
use super::consent::{Sink, call, link_in};
use super::requests::{mail_to, person, served};
use steward_core::store::prelude::*;

/// A cookie-keeping client that posts forms as a browser on this site does.
struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    base: String,
}

struct Page {
    status: u16,
    location: String,
    html: String,
}

impl Page {
    /// The value of hidden or text input `name` (the first).
    fn input(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        self.html
            .find(&needle)
            .map(|i| {
                let rest = &self.html[i + needle.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_owned()
            })
            .unwrap_or_default()
    }
}

impl Browser {
    fn new(app: &App) -> Self {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            base: format!("http://{}", app.address),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let text = c.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Page {
            status,
            location,
            html: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", "en")
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", "null")
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }
}

/// `application/x-www-form-urlencoded`, as a browser writes it.
fn encode(form: &[(&str, &str)]) -> String {
    let one = |t: &str| {
        t.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", one(k), one(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn requests_of(app: &App) -> Vec<serde_json::Value> {
    let (status, list) = call(app, reqwest::Method::GET, "/v1/requests", &app.dpo, None).await;
    assert_eq!(status, 200, "{list}");
    list["requests"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_request_form_with_bad_input_says_what_is_wrong_keeps_the_values_and_acts_once() {
    let sink = Sink::start().await;
    let app = served(super::example_text("004-mailpro.toml"), &sink).await;
    let mut b = Browser::new(&app);
    let form = b.get("/privacy/request?kind=rectification").await;
    assert_eq!(form.status, 200);
    let (csrf, once) = (form.input("csrf"), form.input("once"));

    // Missing and oversized fields: a 422 naming each, the values kept, nothing taken in.
    let long = "x".repeat(2001);
    let page = b
        .post(
            "/privacy/request",
            &[
                ("csrf", &csrf),
                ("once", &once),
                ("kind", "rectification"),
                ("email", "not an address"),
                ("category", "user.name"),
                ("value", &long),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.html
            .contains("Write an e-mail address like name@example.com."),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("This is too long: at most 2000 characters.")
    );
    assert!(
        page.html.contains("value=\"not an address\""),
        "the address typed is kept"
    );
    assert!(
        page.html.contains("<option value=\"user.name\" selected>"),
        "the category chosen is kept"
    );
    assert!(requests_of(&app).await.is_empty(), "nothing was taken in");

    // A stale token (another browser's, or an old page): the form comes back, values kept.
    let page = b
        .post(
            "/privacy/request",
            &[
                ("csrf", "stale"),
                ("once", &once),
                ("kind", "access"),
                ("email", "ana@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("This form had expired"), "{}", page.html);
    assert!(page.html.contains("value=\"ana@example.com\""));
    assert!(requests_of(&app).await.is_empty());

    // Sent twice (a double click): one request, and the second answer says so.
    let fresh = b.get("/privacy/request?kind=access").await;
    let fields = [
        ("csrf", fresh.input("csrf")),
        ("once", fresh.input("once")),
        ("kind", "access".to_owned()),
        ("email", "ana@example.com".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = b.post("/privacy/request", &fields).await;
    assert_eq!(first.status, 200, "{}", first.html);
    let second = b.post("/privacy/request", &fields).await;
    assert_eq!(second.status, 409);
    assert!(second.html.contains("already sent"));
    assert_eq!(requests_of(&app).await.len(), 1, "acted once");

    // From another site: refused before anything is read.
    let r = reqwest::Client::new()
        .post(app.url("/privacy/request"))
        .header("origin", "https://evil.example")
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", fresh.input("csrf").as_str()),
            ("once", "another-once-value-1234"),
            ("kind", "access"),
            ("email", "ana@example.com"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(requests_of(&app).await.len(), 1);
}

#[tokio::test]
async fn an_expired_link_and_an_ended_session_say_so_and_lose_nothing() {
    let sink = Sink::start().await;
    let app = served(super::example_text("004-mailpro.toml"), &sink).await;
    person(
        &app,
        "alice@example.com",
        "account",
        json!({ "user.name": "Alice" }),
    )
    .await;
    let mut b = Browser::new(&app);
    let form = b.get("/privacy/request?kind=access").await;
    let page = b
        .post(
            "/privacy/request",
            &[
                ("csrf", &form.input("csrf")),
                ("once", &form.input("once")),
                ("kind", "access"),
                ("email", "alice@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    let mail = mail_to(&sink, "alice@example.com", "/requests/verify").await;
    let link = link_in(&mail, "/requests/verify");
    let path = link.trim_start_matches(&b.base).to_owned();

    // An expired link: the page says so, in the centre's words.
    app.clock.advance(time::Duration::days(2));
    let expired = b.get(&path).await;
    assert_eq!(expired.status, 410, "{}", expired.html);
    assert!(expired.html.contains("This link does not work") && expired.html.contains("expired"));

    // A new request, confirmed: My data, signed in.
    let form = b.get("/privacy/request?kind=access").await;
    b.post(
        "/privacy/request",
        &[
            ("csrf", &form.input("csrf")),
            ("once", &form.input("once")),
            ("kind", "access"),
            ("email", "alice@example.com"),
        ],
    )
    .await;
    let mut link = String::new();
    for _ in 0..150 {
        let mails: Vec<String> = sink
            .all()
            .iter()
            .map(|m| super::consent::unfold(m))
            .filter(|m| m.contains("/requests/verify"))
            .collect();
        if mails.len() >= 2 {
            link = link_in(mails.last().unwrap(), "/requests/verify");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let confirmed = b.post("/requests/verify", &[("token", &token)]).await;
    assert_eq!(confirmed.status, 303);
    assert_eq!(confirmed.location, "/privacy/me");
    let me = b.get("/privacy/me").await;
    assert!(me.html.contains("Alice"), "{}", me.html);
    let (csrf, once) = (me.input("csrf"), me.input("once"));

    // The session ends while the person types: the page says so and keeps the value.
    app.clock.advance(time::Duration::minutes(31));
    let before = requests_of(&app).await.len();
    let ended = b
        .post(
            "/privacy/me/correct",
            &[
                ("csrf", &csrf),
                ("once", &once),
                ("category", "user.name"),
                ("value", "Alice Pleasance"),
            ],
        )
        .await;
    assert_eq!(ended.status, 422);
    assert!(
        ended.html.contains("Your session has ended"),
        "{}",
        ended.html
    );
    assert!(
        ended.html.contains("What you typed was: Alice Pleasance"),
        "the value typed is kept"
    );
    assert_eq!(requests_of(&app).await.len(), before, "nothing was done");
}

#[tokio::test]
async fn the_console_keeps_a_form_across_an_ended_session_and_checks_roles_as_the_api_does() {
    let sink = Sink::start().await;
    let text = super::example_text("004-mailpro.toml").replacen(
        "[rights]\n",
        "[rights]\napproval = true\n",
        1,
    );
    let app = served(text, &sink).await;
    person(
        &app,
        "bob@example.com",
        "account",
        json!({ "user.name": "Bob" }),
    )
    .await;
    let (status, created) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(json!({ "kind": "erasure", "email": "bob@example.com", "vouch": true })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let cli = Access::new(Principal::cli());
    let mut secrets = Vec::new();
    for (name, role) in [("dora", Role::Dpo), ("ada", Role::Auditor)] {
        secrets.push(
            app.vault
                .create_staff(
                    &cli,
                    &NewStaff {
                        username: name,
                        role,
                        password: "a long and private passphrase",
                        totp: true,
                    },
                )
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let code = |secret: &[u8; 20], app: &App| {
        let step = app.vault.clock().now().unix_timestamp() / totp::STEP;
        format!("{:06}", totp::code(secret, step))
    };

    // An auditor may not decide: the console refuses as the API does, and audits it.
    let mut auditor = Browser::new(&app);
    let form = auditor.get("/admin/sign-in").await;
    let signed = auditor
        .post(
            "/admin/sign-in",
            &[
                ("csrf", &form.input("csrf")),
                ("username", "ada"),
                ("password", "a long and private passphrase"),
                ("code", &code(&secrets[1], &app)),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    let detail = auditor.get(&format!("/admin/requests/{id}")).await;
    assert_eq!(detail.status, 403, "{}", detail.html);
    let (_, api) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/requests/{id}"),
        &app.auditor,
        None,
    )
    .await;
    assert!(
        detail.html.contains(api["message"].as_str().unwrap()),
        "the same refusal as the API: {api}"
    );

    // A DPO's session ends while they write a refusal: the sign-in page keeps it, and after
    // signing in it is sent again with one press — and only then acted on.
    let mut dpo = Browser::new(&app);
    let form = dpo.get("/admin/sign-in").await;
    dpo.post(
        "/admin/sign-in",
        &[
            ("csrf", &form.input("csrf")),
            ("username", "dora"),
            ("password", "a long and private passphrase"),
            ("code", &code(&secrets[0], &app)),
        ],
    )
    .await;
    let detail = dpo.get(&format!("/admin/requests/{id}")).await;
    assert_eq!(detail.status, 200);
    let (csrf, once) = (detail.input("csrf"), detail.input("once"));
    app.clock.advance(time::Duration::minutes(31));
    let reason = "The account is needed for an open invoice dispute";
    let ended = dpo
        .post(
            &format!("/admin/requests/{id}/deny"),
            &[("csrf", &csrf), ("once", &once), ("reason", reason)],
        )
        .await;
    assert_eq!(ended.status, 401, "{}", ended.html);
    assert!(ended.html.contains(reason), "the reason is kept");
    assert_eq!(
        super::requests::show(&app, &id).await["status"],
        "awaiting-approval",
        "nothing was done"
    );
    app.clock.advance(time::Duration::seconds(31));
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), ended.input("csrf")),
        ("username".into(), "dora".into()),
        ("password".into(), "a long and private passphrase".into()),
        ("code".into(), code(&secrets[0], &app)),
        ("resume".into(), ended.input("resume")),
        ("keep.reason".into(), reason.into()),
    ];
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resume = dpo.post("/admin/sign-in", &refs).await;
    assert_eq!(resume.status, 200, "{}", resume.html);
    assert!(resume.html.contains(reason));
    fields.clear();
    let again = dpo
        .post(
            &format!("/admin/requests/{id}/deny"),
            &[
                ("csrf", &resume.input("csrf")),
                ("once", &resume.input("once")),
                ("reason", reason),
            ],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.html);
    assert!(again.html.contains("Refused"), "{}", again.html);
    assert_eq!(super::requests::show(&app, &id).await["status"], "denied");

    // The same form once more (a reload): nothing done twice.
    let twice = dpo
        .post(
            &format!("/admin/requests/{id}/deny"),
            &[
                ("csrf", &resume.input("csrf")),
                ("once", &resume.input("once")),
                ("reason", reason),
            ],
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.html);
}

#[tokio::test]
async fn the_centre_speaks_the_browsers_language_among_the_declared_ones() {
    let app = super::spawn(super::example("004-mailpro.toml")).await;
    let get = |lang: &'static str| {
        let url = app.url("/privacy/request");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("accept-language", lang)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let de = get("de-CH,de;q=0.9,en;q=0.5").await;
    assert!(
        de.contains("<html lang=\"de\">") && de.contains("Anfrage"),
        "{de}"
    );
    let fr = get("fr-FR").await;
    assert!(fr.contains("<html lang=\"fr\">"), "{fr}");
    let it = get("it").await;
    assert!(it.contains("<html lang=\"en\">") && it.contains("Make a request"));
}

#[tokio::test]
async fn a_code_typed_on_the_page_confirms_the_request_and_opens_my_data_and_an_immutable_field_says_why()
 {
    let sink = Sink::start().await;
    let text = super::example_text("004-mailpro.toml").replace(
        "verification = [\"account\", \"email-link\"]",
        "verification = [\"email-code\", \"account\"]\nimmutable = [\"user.account.username\"]",
    );
    let app = served(text, &sink).await;
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/v1/subjects",
        &app.service,
        Some(json!({
            "purpose": "account",
            "identities": [{ "kind": "email", "value": "dev@example.com" }, { "kind": "username", "value": "dev" }],
            "fields": { "user.name": "Dev Shah" }
        })),
    )
    .await;
    assert_eq!(status, 201);
    let mut b = Browser::new(&app);
    let form = b.get("/privacy/request?kind=access").await;
    let sent = b
        .post(
            "/privacy/request",
            &[
                ("csrf", &form.input("csrf")),
                ("once", &form.input("once")),
                ("kind", "access"),
                ("email", "dev@example.com"),
            ],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    assert!(
        sent.html.contains("name=\"code\""),
        "the page asks for the code: {}",
        sent.html
    );
    let action = sent
        .html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        action.starts_with("/privacy/request/") && action.ends_with("/code"),
        "{action}"
    );

    // A wrong code: the page says how many tries are left and asks again.
    let wrong = b
        .post(
            &action,
            &[
                ("csrf", &sent.input("csrf")),
                ("once", &sent.input("once")),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.html);
    assert!(wrong.html.contains("attempts left"), "{}", wrong.html);
    let mail = mail_to(&sink, "dev@example.com", "your verification code").await;
    let code: String = mail
        .split("enter this code where you made the request: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let right = b
        .post(
            &action,
            &[
                ("csrf", &wrong.input("csrf")),
                ("once", &wrong.input("once")),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(right.status, 303, "{}", right.html);
    assert_eq!(right.location, "/privacy/me");
    let me = b.get("/privacy/me").await;
    assert!(me.html.contains("Dev Shah"), "{}", me.html);
    assert!(
        me.html
            .contains("Cannot be changed: it identifies your account"),
        "the immutable username says why: {}",
        me.html
    );
    assert_eq!(
        me.html
            .matches("name=\"category\" value=\"user.account.username\"")
            .count(),
        0,
        "and offers no form"
    );
}

#[tokio::test]
async fn the_logo_is_served_by_steward_under_a_policy_that_runs_nothing() {
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><script>alert(1)</script><rect width=\"10\" height=\"10\"/></svg>".to_vec();
    let config = steward_server::ServerConfig {
        logo: Some((svg.clone(), "image/svg+xml")),
        ..steward_server::ServerConfig::default()
    };
    let app = super::spawn_with(super::example("004-mailpro.toml"), config).await;
    let page = crate::get(app.url("/privacy"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<img src=\"/privacy/logo\" alt=\"\">"),
        "{page}"
    );
    let logo = crate::get(app.url("/privacy/logo")).await.unwrap();
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
    assert!(
        logo.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert_eq!(logo.bytes().await.unwrap().to_vec(), svg);
    let none = super::spawn(super::example("004-mailpro.toml")).await;
    assert_eq!(
        crate::get(none.url("/privacy/logo"))
            .await
            .unwrap()
            .status(),
        404
    );
}

/// Makes an access request for `email` in `b` and confirms it by the mailed link: `b` is then
/// signed in to "My data".
async fn signed_in(b: &mut Browser, sink: &Sink, email: &str) {
    let before = sink.all().len();
    let form = b.get("/privacy/request?kind=access").await;
    let sent = b
        .post(
            "/privacy/request",
            &[
                ("csrf", &form.input("csrf")),
                ("once", &form.input("once")),
                ("kind", "access"),
                ("email", email),
            ],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    let mut link = String::new();
    for _ in 0..150 {
        let all = sink.all();
        if let Some(m) = all[before.min(all.len())..]
            .iter()
            .map(|m| super::consent::unfold(m))
            .find(|m| m.contains("/requests/verify"))
        {
            link = link_in(&m, "/requests/verify");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = link
        .split("token=")
        .nth(1)
        .expect("a verification mail")
        .to_owned();
    let confirmed = b.post("/requests/verify", &[("token", &token)]).await;
    assert_eq!(confirmed.location, "/privacy/me", "{}", confirmed.html);
}

#[tokio::test]
async fn a_signed_in_person_sees_their_consents_on_the_choices_page_and_withdraws_one() {
    let sink = Sink::start().await;
    let app = served(super::example_text("004-mailpro.toml"), &sink).await;
    let id = person(
        &app,
        "alice@example.com",
        "account",
        json!({ "user.name": "Alice" }),
    )
    .await;
    let (status, granted) = call(
        &app,
        reqwest::Method::POST,
        "/v1/consent",
        &app.service,
        Some(json!({ "subject": id, "action": "grant", "purpose": "preferences" })),
    )
    .await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["permit"]["allowed"], true, "{granted}");

    // Not signed in: the consent purposes, and the way to My data.
    let mut b = Browser::new(&app);
    let anonymous = b.get("/privacy/choices").await;
    assert!(
        anonymous.html.contains("Remembering your preferences")
            && !anonymous.html.contains("my-consents")
    );

    signed_in(&mut b, &sink, "alice@example.com").await;
    let choices = b.get("/privacy/choices").await;
    assert!(
        choices.html.contains("id=\"my-consents\""),
        "{}",
        choices.html
    );
    assert!(choices.html.contains("You consented"));
    let withdrawn = b
        .post(
            "/privacy/me/purpose",
            &[
                ("csrf", &choices.input("csrf")),
                ("once", &choices.input("once")),
                ("purpose", "preferences"),
                ("kind", "withdraw-consent"),
            ],
        )
        .await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.html);
    assert_eq!(withdrawn.location, "/privacy/me?done=withdraw");
    let party = steward_core::consent::Party::Subject(steward_core::SubjectId(id.parse().unwrap()));
    let mut reason = String::new();
    for _ in 0..100 {
        reason = app
            .ledger
            .permit(&party, "preferences")
            .unwrap()
            .reason
            .code()
            .to_owned();
        if reason == "withdrawn" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reason, "withdrawn", "the withdrawal reached the ledger");
    let me = b.get("/privacy/me?done=withdraw").await;
    assert!(me.html.contains("Your consent is withdrawn."));
    assert!(me.html.contains("You withdrew consent"), "{}", me.html);
}

#[tokio::test]
async fn a_form_from_another_site_is_never_kept_for_after_a_sign_in_and_only_console_forms_resume()
{
    let sink = Sink::start().await;
    let app = served(super::example_text("004-mailpro.toml"), &sink).await;
    let secret = app
        .vault
        .create_staff(
            &Access::new(Principal::cli()),
            &NewStaff {
                username: "adam",
                role: Role::Admin,
                password: "a long and private passphrase",
                totp: true,
            },
        )
        .await
        .unwrap()
        .unwrap();
    // A page elsewhere posts a key revocation in a browser that has no session cookie with it
    // (SameSite=Strict): refused, and nothing kept to be sent after a sign-in.
    let r = reqwest::Client::new()
        .post(app.url("/admin/keys/revoke"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("prefix=stw_00000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("name=\"resume\"") && !page.contains("stw_00000000"),
        "{page}"
    );

    // A sign-in asked to resume anything but a console form just signs in.
    let mut b = Browser::new(&app);
    let form = b.get("/admin/sign-in").await;
    let step = app.vault.clock().now().unix_timestamp() / totp::STEP;
    let code = format!("{:06}", totp::code(&secret, step));
    let signed = b
        .post(
            "/admin/sign-in",
            &[
                ("csrf", &form.input("csrf")),
                ("username", "adam"),
                ("password", "a long and private passphrase"),
                ("code", &code),
                ("resume", "/admin/requests/../../v1/subjects/x"),
                ("keep.x", "y"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    assert_eq!(signed.location, "/admin");

    // Every console change needs its one-time id: a form without one does nothing.
    let keys = b.get("/admin/keys").await;
    let without = b
        .post(
            "/admin/keys",
            &[
                ("csrf", &keys.input("csrf")),
                ("name", "twice"),
                ("role", "service"),
            ],
        )
        .await;
    assert_eq!(without.status, 409, "{}", without.html);
    let listed = app.store.list_api_keys().await.unwrap();
    assert!(listed.iter().all(|k| k.name != "twice"), "no key was made");
}

#[tokio::test]
async fn signing_out_ends_the_session_everywhere_and_a_confirmation_from_another_site_signs_nobody_in()
 {
    let sink = Sink::start().await;
    let app = served(super::example_text("004-mailpro.toml"), &sink).await;
    person(
        &app,
        "alice@example.com",
        "account",
        json!({ "user.name": "Alice" }),
    )
    .await;
    let mut b = Browser::new(&app);
    signed_in(&mut b, &sink, "alice@example.com").await;
    let me = b.get("/privacy/me").await;
    assert!(me.html.contains("Alice"));
    let token = b
        .cookies
        .get("steward-me")
        .cloned()
        .expect("a session cookie");
    let out = b
        .post("/privacy/me/sign-out", &[("csrf", &me.input("csrf"))])
        .await;
    assert_eq!(out.status, 303);
    assert!(!b.cookies.contains_key("steward-me"));
    // The old token, replayed: signed out for good.
    b.cookies.insert("steward-me".to_owned(), token);
    let replay = b.get("/privacy/me").await;
    assert!(!replay.html.contains("Alice"), "{}", replay.html);
    assert!(replay.html.contains("Your session has ended"));

    // Someone else's confirmation link, posted from another site: the request is confirmed
    // (the link is the proof) but this browser is not signed in to their data.
    let form = b.get("/privacy/request?kind=access").await;
    b.post(
        "/privacy/request",
        &[
            ("csrf", &form.input("csrf")),
            ("once", &form.input("once")),
            ("kind", "access"),
            ("email", "alice@example.com"),
        ],
    )
    .await;
    let mut link = String::new();
    for _ in 0..150 {
        let all: Vec<String> = sink
            .all()
            .iter()
            .map(|m| super::consent::unfold(m))
            .filter(|m| m.contains("/requests/verify"))
            .collect();
        if all.len() >= 2 {
            link = link_in(all.last().unwrap(), "/requests/verify");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(app.url("/requests/verify"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "nobody is signed in from another site"
    );
}

#[tokio::test]
async fn changes_in_my_data_count_against_the_request_limits() {
    let sink = Sink::start().await;
    let mailer = std::sync::Arc::new(
        steward_server::mail::SmtpMailer::new(
            &format!("smtp://127.0.0.1:{}", sink.port),
            "privacy@mailpro.example",
        )
        .unwrap(),
    );
    let config = steward_server::ServerConfig {
        rates: steward_server::api::Rates {
            request_identity: (3, time::Duration::HOUR),
            ..steward_server::api::Rates::default()
        },
        ..steward_server::ServerConfig::default()
    };
    let app = super::spawn_full(
        super::example("004-mailpro.toml"),
        config,
        mailer,
        tempfile::tempdir().unwrap(),
    )
    .await;
    person(
        &app,
        "alice@example.com",
        "account",
        json!({ "user.name": "Alice" }),
    )
    .await;
    let mut b = Browser::new(&app);
    signed_in(&mut b, &sink, "alice@example.com").await;
    let mut refused = None;
    for i in 0..5 {
        let me = b.get("/privacy/me").await;
        let once = me
            .html
            .split("name=\"once\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let r = b
            .post(
                "/privacy/me/purpose",
                &[
                    ("csrf", &me.input("csrf")),
                    ("once", &once),
                    ("purpose", "support"),
                    ("kind", "restriction"),
                ],
            )
            .await;
        if r.status != 303 {
            refused = Some((i, r));
            break;
        }
    }
    let (at, page) = refused.expect("the per-address limit applies in a session");
    assert!(at <= 3, "refused after {at} changes");
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("Too many attempts"), "{}", page.html);
}
