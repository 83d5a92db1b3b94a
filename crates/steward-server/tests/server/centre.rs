//! The privacy centre and the admin console in headless Chromium: a person asks for their
//! data, confirms by the link that reached a real SMTP sink and downloads it; a person corrects
//! a field and closes the account; an admin signs in with TOTP, sees the overdue request first
//! and approves an erasure. Every page passes axe-core's rules with no serious or critical
//! violation, and every control is reached by the keyboard. The screenshots in
//! `docs/screenshots/` are taken here, so they show the pages as they are.

use std::time::Duration;

use serde_json::{Value, json};
use steward_core::staff::{NewStaff, totp};
use steward_core::{Access, Principal, Role};

use super::browser::Driver;
use super::consent::{Sink, call, link_in};
use super::requests::{mail_to, person, served};
use super::{App, example_text};

/// axe-core's script, installed by `npm ci` in `tests/browser` (`.ci/run` does it).
fn axe_source() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(
                std::env::var_os("STEWARD_TEST_BROWSER").is_none(),
                "STEWARD_TEST_BROWSER is set but axe-core is missing: run `npm ci --prefix crates/steward-server/tests/browser`"
            );
            None
        }
    }
}

impl Driver {
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/session/{}/{path}", self.base(), self.session());
        let reply: Value = self
            .client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["value"].clone()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command("element", json!({"using": "css selector", "value": css}))
            .await;
        found
            .get("element-6066-11e4-a52e-4f735466cecf")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element `{css}` on the page: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(&format!("element/{id}/clear"), json!({}))
            .await;
        self.command(&format!("element/{id}/value"), json!({ "text": text }))
            .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(&format!("element/{id}/click"), json!({}))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        self.script(&format!(
            "const e = document.querySelector({}); return e ? e.textContent : ''",
            json!(css)
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn path(&self) -> String {
        self.script("return location.pathname")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// axe-core's serious and critical violations on the page (none is the bar).
    async fn axe(&self, source: &str) -> Vec<String> {
        let script = format!(
            "{source}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{ resultTypes: ['violations'] }}).then(r => done(r.violations\
             .filter(v => v.impact === 'serious' || v.impact === 'critical')\
             .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))\
             .catch(e => done(['axe failed: ' + e]));"
        );
        let found = self
            .command("execute/async", json!({ "script": script, "args": [] }))
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Presses Tab until focus comes back round, and returns the controls never reached
    /// (links, buttons, fields that a mouse could use but a keyboard could not).
    async fn unreachable_by_keyboard(&self) -> Vec<String> {
        self.script(
            "window.__seen = new Set(); document.addEventListener('focusin', e => window.__seen.add(e.target)); \
             document.activeElement && document.activeElement.blur(); return true",
        )
        .await;
        let count = self
            .script("return document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea').length")
            .await
            .as_u64()
            .unwrap_or(0);
        let tab = json!({"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]});
        // A date field takes a Tab per part (day, month, year): room for those.
        for _ in 0..count * 2 + 8 {
            self.command("actions", json!({ "actions": [tab.clone()] }))
                .await;
        }
        let missed = self
            .script(
                "return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]\
                 .filter(e => e.offsetParent !== null && !window.__seen.has(e))\
                 .map(e => e.outerHTML.slice(0, 120))",
            )
            .await;
        missed
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks the page as everyone must be able to use it: no serious accessibility
    /// violation, every control reachable by keyboard.
    async fn usable(&self, axe: &str, page: &str) {
        let violations = self.axe(axe).await;
        assert!(violations.is_empty(), "{page}: axe found {violations:#?}");
        let missed = self.unreachable_by_keyboard().await;
        assert!(
            missed.is_empty(),
            "{page}: not reachable by Tab: {missed:#?}"
        );
    }

    /// Saves the window as `docs/screenshots/NAME.png`.
    async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        // As a person first sees the page: nothing focused, at the top.
        self.script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true")
            .await;
        let data = self.get("screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a PNG");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn window(&self, width: u32, height: u32) {
        self.command("window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// Lets the browser save downloads into `dir`.
    async fn downloads_to(&self, dir: &std::path::Path) {
        let url = format!(
            "{}/session/{}/goog/cdp/execute",
            self.base(),
            self.session()
        );
        let reply: Value = self
            .client()
            .post(url)
            .json(&json!({ "cmd": "Browser.setDownloadBehavior", "params": {
                "behavior": "allow", "downloadPath": dir.display().to_string() }}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(reply["value"].is_object(), "CDP refused: {reply}");
    }
}

/// Waits (at most 15 s) for a finished download in `dir` other than `seen`; returns the
/// names of the files in the ZIP.
async fn downloaded(
    dir: &std::path::Path,
    seen: &[std::path::PathBuf],
) -> (std::path::PathBuf, Vec<String>) {
    for _ in 0..150 {
        let done: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "zip") && !seen.contains(p))
            .collect();
        if let Some(path) = done.first() {
            let bytes = std::fs::read(path).unwrap();
            if let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
                let names = (0..zip.len())
                    .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
                    .collect();
                return (path.clone(), names);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no download arrived in {}", dir.display());
}

/// A served Mailpro whose mail goes to `sink`, with Alice known to it.
async fn mailpro(sink: &Sink, text: String) -> App {
    let app = served(text, sink).await;
    person(
        &app,
        "alice@example.com",
        "account",
        json!({ "user.name": "Alice Liddell" }),
    )
    .await;
    app
}

/// The person asks for their data in the browser and follows the link that arrived: they
/// land on "My data", signed in.
async fn confirmed_by_mail(driver: &Driver, app: &App, sink: &Sink, axe: &str) {
    driver.open(&app.url("/privacy/request?kind=access")).await;
    driver.usable(axe, "the request form").await;
    driver.screenshot("request-form").await;
    driver.type_into("#email", "alice@example.com").await;
    driver.click("form.stack button[type=submit]").await;
    assert!(
        driver
            .until("return !!document.getElementById('sent')")
            .await,
        "not sent: {}",
        driver.text("main").await
    );
    let mail = mail_to(sink, "alice@example.com", "/requests/verify").await;
    driver.open(&link_in(&mail, "/requests/verify")).await;
    driver.usable(axe, "the confirmation page").await;
    driver.click("#content form button").await;
    assert!(
        driver
            .until("return location.pathname === '/privacy/me'")
            .await,
        "the confirmed person did not reach My data: {} {}",
        driver.path().await,
        driver.text("body").await
    );
}

#[tokio::test]
async fn a_person_asks_for_their_data_confirms_by_mail_and_downloads_it() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    driver.window(1280, 1000).await;
    let sink = Sink::start().await;
    let app = mailpro(&sink, example_text("004-mailpro.toml")).await;

    // The centre's front page: the notice with its table of contents, then the choices.
    driver.open(&app.url("/privacy")).await;
    assert_eq!(driver.text("h1").await, "Privacy notice: Mailpro");
    assert!(driver.text("main nav").await.contains("Contents"));
    driver.usable(&axe, "the notice").await;
    driver.screenshot("privacy-centre").await;
    driver.open(&app.url("/privacy/choices")).await;
    driver.usable(&axe, "the choices").await;
    assert!(
        driver.text("#gpc-state").await.contains("does not send"),
        "the GPC state is shown"
    );
    assert!(
        driver.script("return !!document.querySelector('a[href=\"/privacy/request?kind=opt-out-sale-share\"]')").await == true,
        "Mailpro shares for advertising: the Do Not Sell or Share link is there"
    );
    driver.open(&app.url("/privacy/request")).await;
    driver.usable(&axe, "the list of rights").await;

    confirmed_by_mail(&driver, &app, &sink, &axe).await;
    let fields = driver.text("main table").await;
    assert!(
        fields.contains("Alice Liddell"),
        "My data shows the name: {fields}"
    );
    driver.usable(&axe, "My data").await;
    driver.screenshot("my-data").await;

    // The package, from My data and from the link the access request mailed, saved by the
    // browser as a person's download is.
    let dir = tempfile::tempdir().unwrap();
    driver.downloads_to(dir.path()).await;
    driver.click("#download-link").await;
    let (first, names) = downloaded(dir.path(), &[]).await;
    assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".html")), "{names:?}");
    let mail = mail_to(&sink, "alice@example.com", "/package?token=").await;
    driver.open(&link_in(&mail, &mail_path(&mail))).await;
    let (_, names) = downloaded(dir.path(), &[first]).await;
    assert!(
        names.iter().any(|n| n.ends_with(".json")),
        "the mailed link's package: {names:?}"
    );
    driver.quit().await;
}

/// The path of the package link in `mail` (`/requests/{id}/package`).
fn mail_path(mail: &str) -> String {
    let end = mail.find("/package?token=").expect("a package link");
    let start = mail[..end].rfind("/requests/").expect("a request path");
    format!("{}/package", &mail[start..end])
}

#[tokio::test]
async fn a_person_corrects_a_field_and_closes_the_account() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let sink = Sink::start().await;
    let app = mailpro(&sink, example_text("004-mailpro.toml")).await;
    confirmed_by_mail(&driver, &app, &sink, &axe).await;

    // A correction with nothing in it is refused on the page; nothing is sent.
    driver
        .click(
            "form[action='/privacy/me/correct'] input[name=category][value='user.name'] ~ button",
        )
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('form-note')")
            .await
    );
    driver
        .type_into(
            "form[action='/privacy/me/correct']:has(input[value='user.name']) input[name=value]",
            "Alice Pleasance Liddell",
        )
        .await;
    driver
        .click("form[action='/privacy/me/correct']:has(input[value='user.name']) button")
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('done')")
            .await
    );
    // The correction is carried out by the job queue; the page shows it once done.
    let mut corrected = false;
    for _ in 0..50 {
        driver.open(&app.url("/privacy/me")).await;
        if driver
            .text("main table")
            .await
            .contains("Alice Pleasance Liddell")
        {
            corrected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(corrected, "the corrected name is shown");

    // Closing needs the confirmation box; then the erasure is scheduled after the delay.
    driver
        .click("form[action='/privacy/me/close'] button")
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('confirm-error')")
            .await
    );
    driver.click("#confirm").await;
    driver
        .click("form[action='/privacy/me/close'] button")
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('done')")
            .await
    );
    let (status, list) = call(&app, reqwest::Method::GET, "/v1/requests", &app.dpo, None).await;
    assert_eq!(status, 200);
    let erasure = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "erasure")
        .unwrap_or_else(|| panic!("no erasure request: {list}"))
        .clone();
    assert_eq!(erasure["close_account"], true, "{erasure}");
    assert_eq!(erasure["verification"]["method"], "session", "{erasure}");
    driver.quit().await;
}

#[tokio::test]
async fn an_admin_signs_in_with_totp_sees_the_overdue_request_first_and_approves_an_erasure() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    driver.window(1280, 1000).await;
    let sink = Sink::start().await;
    let text =
        example_text("004-mailpro.toml").replacen("[rights]\n", "[rights]\napproval = true\n", 1);
    let app = mailpro(&sink, text).await;
    person(
        &app,
        "bob@example.com",
        "account",
        json!({ "user.name": "Bob" }),
    )
    .await;
    let secret = app
        .vault
        .create_staff(
            &Access::new(Principal::cli()),
            &NewStaff {
                username: "dora",
                role: Role::Dpo,
                password: "a long and private passphrase",
                totp: true,
            },
        )
        .await
        .unwrap()
        .unwrap();
    // An access request made weeks ago (overdue now), and an erasure made today.
    let vouched = |kind: &str, email: &str| json!({ "kind": kind, "email": email, "vouch": true });
    let (status, old) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(vouched("access", "alice@example.com")),
    )
    .await;
    assert_eq!(status, 201, "{old}");
    app.clock.advance(time::Duration::days(40));
    let (status, erasure) = call(
        &app,
        reqwest::Method::POST,
        "/v1/requests",
        &app.service,
        Some(vouched("erasure", "bob@example.com")),
    )
    .await;
    assert_eq!(status, 201, "{erasure}");
    let erasure_id = erasure["id"].as_str().unwrap().to_owned();

    driver.open(&app.url("/admin")).await;
    assert_eq!(driver.path().await, "/admin/sign-in");
    driver.usable(&axe, "the sign-in page").await;
    driver.type_into("#username", "dora").await;
    driver
        .type_into("#password", "a long and private passphrase")
        .await;
    let step = app.vault.clock().now().unix_timestamp() / totp::STEP;
    driver
        .type_into("#code", &format!("{:06}", totp::code(&secret, step)))
        .await;
    driver.click("form.stack button").await;
    assert!(
        driver.until("return location.pathname === '/admin'").await,
        "not signed in: {}",
        driver.text("main").await
    );

    // Overdue first, and marked so.
    let first = driver.text("#requests tbody tr:first-child").await;
    assert!(
        first.contains("overdue") && first.contains("access"),
        "{first}"
    );
    let second = driver.text("#requests tbody tr:nth-child(2)").await;
    assert!(
        second.contains("erasure") && !second.contains("overdue"),
        "{second}"
    );
    assert!(driver.text("#audit-status").await.contains("intact"));
    driver.usable(&axe, "the dashboard").await;
    driver.screenshot("admin-dashboard").await;

    driver
        .click(&format!("a[href='/admin/requests/{erasure_id}']"))
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('approve')")
            .await
    );
    driver.usable(&axe, "the request detail").await;
    driver.screenshot("request-detail").await;
    driver.click("#approve").await;
    assert!(
        driver
            .until("return !!document.getElementById('flash')")
            .await
    );
    assert!(driver.text("#flash").await.contains("Approved"));
    let (_, shown) = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/requests/{erasure_id}"),
        &app.dpo,
        None,
    )
    .await;
    assert_ne!(shown["status"], "awaiting-approval", "{shown}");
    assert!(
        shown["history"].to_string().contains("staff:dora"),
        "the approval is the signed-in person's: {shown}"
    );

    // The other console pages pass the same checks.
    for page in [
        "/admin/requests",
        "/admin/people",
        "/admin/audit",
        "/admin/keys",
        "/admin/records",
        "/admin/notice",
    ] {
        driver.open(&app.url(page)).await;
        driver.usable(&axe, page).await;
    }
    driver
        .open(&app.url("/admin/audit?actor=staff%3Adora"))
        .await;
    let audit = driver.text("#audit").await;
    assert!(
        audit.contains("awaiting-approval->verified"),
        "the approval is in the audit trail: {audit}"
    );
    driver.quit().await;
}
