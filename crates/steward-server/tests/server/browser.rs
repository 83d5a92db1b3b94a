//! Headless Chromium, driven over the WebDriver protocol by chromedriver.
//!
//! The test is skipped, loudly, where chromedriver is not installed, unless
//! `STEWARD_TEST_BROWSER` is set (as `.ci/run` does), in which case its absence fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{example, spawn};

pub(crate) struct Driver {
    process: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempdir::TempDir,
}

mod tempdir {
    /// A fresh profile folder for Chromium, removed afterwards.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "steward-chromium-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).expect("profile dir");
            Self(path)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn rand_suffix() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(0u8)
    }
}

fn find(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// POSTs JSON and returns the JSON reply.
async fn post(client: &reqwest::Client, url: String, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session, or `None` when not installed.
    pub(crate) async fn start() -> Option<Self> {
        let Some(chromedriver) = find("chromedriver") else {
            assert!(
                std::env::var_os("STEWARD_TEST_BROWSER").is_none(),
                "STEWARD_TEST_BROWSER is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            steward_core::conformance::skipped(
                "browser",
                "install chromium and chromium-driver (set STEWARD_TEST_BROWSER=1 to require them)",
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let client = crate::client();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start within 10 s");
        let profile = tempdir::TempDir::new();
        let binary = find("chromium").map_or_else(
            || "/usr/bin/chromium".to_owned(),
            |p| p.display().to_string(),
        );
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         format!("--user-data-dir={}", profile.0.display())]
            }
        }}});
        let created = post(&client, format!("{base}/session"), &capabilities).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Some(Self {
            process,
            base,
            session,
            client,
            _profile: profile,
        })
    }

    pub(crate) async fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let reply = post(&self.client, url, &body).await;
        reply["value"].clone()
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        self.command("execute/sync", json!({"script": script, "args": []}))
            .await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn the_notice_renders_styled_and_keyboard_usable_in_chromium() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn(example("003-allcot.toml")).await;
    driver
        .command(
            "url",
            json!({"url": format!("http://{}/privacy", app.address)}),
        )
        .await;

    // The stylesheet is allowed by its hash: had the CSP blocked it, headings would have no rule.
    let facts = driver
        .script("return [document.documentElement.lang, getComputedStyle(document.querySelector('main h2')).borderTopStyle, document.querySelectorAll('main section').length, document.title]")
        .await;
    assert_eq!(facts[0], "en");
    assert_eq!(
        facts[1], "solid",
        "the inline stylesheet was blocked by the CSP"
    );
    assert_eq!(facts[2], 13);
    assert_eq!(facts[3], "Privacy notice: ALLCOT");

    // The first Tab reaches the skip link, which leads to the content.
    driver
        .command(
            "actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]}),
        )
        .await;
    let focused = driver.script("return [document.activeElement.className, document.activeElement.getAttribute('href')]").await;
    assert_eq!(focused, json!(["skip", "#content"]));

    // Every table has headers a screen reader announces.
    let tables = driver
        .script("return [...document.querySelectorAll('table')].every(t => t.querySelector('caption') && t.querySelectorAll('th[scope=col]').length > 0)")
        .await;
    assert_eq!(tables, true);
    let _ = driver
        .client
        .delete(format!("{}/session/{}", driver.base, driver.session))
        .send()
        .await;
}

impl Driver {
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn session(&self) -> &str {
        &self.session
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) async fn open(&self, url: &str) {
        self.command("url", json!({ "url": url })).await;
    }

    /// Makes `navigator.globalPrivacyControl` true in every page this browser opens, as a
    /// browser with GPC switched on does.
    async fn enable_gpc(&self) {
        let url = format!("{}/session/{}/goog/cdp/execute", self.base, self.session);
        let reply = post(
            &self.client,
            url,
            &json!({ "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {
                "source": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true });"
            }}),
        )
        .await;
        assert!(reply["value"].is_object(), "CDP refused: {reply}");
    }

    /// Waits (bounded) until `script` returns true.
    pub(crate) async fn until(&self, script: &str) -> bool {
        for _ in 0..50 {
            if self.script(script).await == true {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub(crate) async fn quit(self) {
        let _ = self
            .client
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// The operator's page, on its own origin, using consent.js from the Steward at `?steward=PORT`.
async fn operator_site() -> std::net::SocketAddr {
    use axum::extract::Query;
    async fn page(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::response::Html<String> {
        let steward = q.get("steward").cloned().unwrap_or_default();
        axum::response::Html(format!(
            r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="http://127.0.0.1:{steward}/consent.js"></script></head>
<body><h1>Shop</h1><a href="#" data-steward-preferences>Privacy choices</a>
<script type="text/plain" data-purpose="site-statistics">window.analyticsRan = true;</script>
<script type="text/plain" data-purpose="advertising">window.adsRan = true;</script>
</body></html>"##
        ))
    }
    // A page whose statistics library is external and slow, used by the inline script after
    // it — the order a site without a banner relies on.
    async fn ordered(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::response::Html<String> {
        let steward = q.get("steward").cloned().unwrap_or_default();
        axum::response::Html(format!(
            r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script>window.order = []; window.errors = []; window.addEventListener('error', function (e) {{ window.errors.push(String(e.message)); }});</script>
<script src="http://127.0.0.1:{steward}/consent.js"></script></head>
<body><h1>Shop</h1>
<script type="text/plain" data-purpose="site-statistics" src="/stats-lib.js"></script>
<script type="text/plain" data-purpose="advertising" src="/ads-lib.js"></script>
<script type="text/plain" data-purpose="site-statistics">window.order.push('inline'); window.stats.track('page');</script>
<script type="text/plain" data-purpose="site-statistics" src="/stats-plugin.js"></script>
</body></html>"##
        ))
    }
    async fn library(name: &'static str, delay_ms: u64) -> impl axum::response::IntoResponse {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        (
            [("content-type", "text/javascript")],
            match name {
                "stats" => {
                    "window.order.push('lib'); window.stats = { tracked: [], track: function (p) { this.tracked.push(p); } };"
                }
                "plugin" => "window.order.push('plugin'); window.stats.track('plugin');",
                _ => "window.order.push('ads');",
            },
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new()
            .route("/page", axum::routing::get(page))
            .route("/ordered", axum::routing::get(ordered))
            .route(
                "/stats-lib.js",
                axum::routing::get(|| library("stats", 400)),
            )
            .route(
                "/stats-plugin.js",
                axum::routing::get(|| library("plugin", 0)),
            )
            .route("/ads-lib.js", axum::routing::get(|| library("ads", 0)));
        let _ = axum::serve(listener, app).await;
    });
    address
}

#[tokio::test]
async fn scripts_unblocked_by_consent_run_in_document_order() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn(example("004-mailpro.toml")).await;
    let site = operator_site().await;
    let page = format!("http://{site}/ordered?steward={}", app.address.port());
    driver.open(&page).await;
    assert!(
        driver
            .until("return !!document.getElementById('steward-accept')")
            .await,
        "no banner"
    );
    // Accept everything but what GPC would block (nothing here): the slow library loads
    // before the inline script that calls it, and the plugin after both.
    driver
        .script("document.getElementById('steward-accept').click(); return true")
        .await;
    assert!(
        driver
            .until("return window.order.indexOf('plugin') >= 0")
            .await,
        "the statistics scripts never all ran"
    );
    let seen = driver
        .script("return [window.order.filter(function (x) { return x !== 'ads'; }), window.errors, window.stats.tracked]")
        .await;
    assert_eq!(
        seen,
        json!([["lib", "inline", "plugin"], [], ["page", "plugin"]]),
        "out of order"
    );
    // And again on a reload, where the choice is already known.
    driver.open(&page).await;
    assert!(
        driver
            .until("return window.order.indexOf('plugin') >= 0")
            .await,
        "the statistics scripts never ran on reload"
    );
    let seen = driver
        .script("return [window.order.filter(function (x) { return x !== 'ads'; }), window.errors]")
        .await;
    assert_eq!(seen, json!([["lib", "inline", "plugin"], []]));
    driver.quit().await;
}

fn device_of(app: &super::App, text: &Value) -> steward_core::consent::Party {
    steward_core::consent::Party::Device(
        app.ledger
            .device(text.as_str().expect("consent.js keeps a device id"))
            .expect("a device id this Steward issued"),
    )
}

#[tokio::test]
async fn consent_js_blocks_until_consent_honours_gpc_and_asks_again_on_a_new_revision() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn(example("004-mailpro.toml")).await;
    let site = operator_site().await;
    let page = format!("http://{site}/page?steward={}", app.address.port());

    // Before consent: the banner is up, focused for the keyboard, and nothing tracking ran.
    driver.open(&page).await;
    assert!(
        driver
            .until("return !!document.getElementById('steward-banner')")
            .await,
        "no banner"
    );
    let facts = driver
        .script("const b = document.getElementById('steward-banner'); return [b.getAttribute('role'), b.getAttribute('aria-labelledby'), document.activeElement.id, window.analyticsRan === undefined, window.adsRan === undefined, !!document.getElementById('steward-signal')]")
        .await;
    assert_eq!(
        facts,
        json!([
            "dialog",
            "steward-title",
            "steward-accept",
            true,
            true,
            false
        ])
    );

    // Choose → allow statistics only → save: the statistics script runs, advertising does not.
    driver
        .script("document.getElementById('steward-customise').click(); return true")
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('steward-purpose-site-statistics')")
            .await
    );
    let labelled = driver
        .script("const b = document.getElementById('steward-purpose-site-statistics'); return !!document.querySelector('label[for=\"' + b.id + '\"]') && !!b.getAttribute('aria-describedby')")
        .await;
    assert_eq!(
        labelled, true,
        "each choice has a label and a description for screen readers"
    );
    driver
        .script("document.getElementById('steward-purpose-site-statistics').click(); document.getElementById('steward-save').click(); return true")
        .await;
    assert!(
        driver.until("return window.analyticsRan === true").await,
        "analytics did not run after consent"
    );
    assert_eq!(
        driver
            .script(
                "return window.adsRan === undefined && !document.getElementById('steward-banner')"
            )
            .await,
        true
    );
    // The choice is on the server's ledger, for this browser.
    assert!(
        driver
            .until("return !!JSON.parse(localStorage.getItem('steward.consent')).device")
            .await
    );
    let device = driver
        .script("return JSON.parse(localStorage.getItem('steward.consent')).device")
        .await;
    let party = device_of(&app, &device);
    let mut recorded = false;
    for _ in 0..50 {
        if app
            .ledger
            .permit(&party, "site-statistics")
            .unwrap()
            .reason
            .code()
            == "consent-given"
        {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recorded, "no grant on the ledger for the browser");
    assert_eq!(
        app.ledger
            .permit(&party, "advertising")
            .unwrap()
            .reason
            .code(),
        "no-consent"
    );

    // A reload remembers the choice without asking.
    driver.open(&page).await;
    assert!(driver.until("return window.analyticsRan === true").await);
    assert_eq!(
        driver
            .script("return !document.getElementById('steward-banner')")
            .await,
        true
    );

    // A new policy revision brings the banner back (and nothing runs until it is answered).
    let bumped = super::example_text("004-mailpro.toml").replacen(
        "version = \"2019-02-05\"",
        "version = \"2026-12-01\"",
        1,
    );
    let next = spawn(super::declaration("004-mailpro.toml", bumped)).await;
    driver
        .open(&format!(
            "http://{site}/page?steward={}",
            next.address.port()
        ))
        .await;
    assert!(
        driver
            .until("return !!document.getElementById('steward-banner')")
            .await,
        "no banner for the new revision"
    );
    assert_eq!(
        driver
            .script("return window.analyticsRan === undefined")
            .await,
        true
    );
    driver.quit().await;

    // A browser with GPC on: the signal is shown as honoured, and accepting everything still
    // never runs the advertising (sharing) script.
    let Some(gpc) = Driver::start().await else {
        return;
    };
    gpc.enable_gpc().await;
    gpc.open(&page).await;
    assert!(
        gpc.until("return !!document.getElementById('steward-signal')")
            .await,
        "no signal note"
    );
    let note = gpc
        .script("return document.getElementById('steward-signal').textContent")
        .await;
    assert!(
        note.as_str()
            .unwrap()
            .contains("Opt-out preference signal honoured"),
        "{note}"
    );
    gpc.script("document.getElementById('steward-accept').click(); return true")
        .await;
    assert!(gpc.until("return window.analyticsRan === true").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gpc.script("return window.adsRan === undefined").await,
        true,
        "the advertising script ran despite GPC"
    );
    assert!(
        gpc.until("return !!JSON.parse(localStorage.getItem('steward.consent')).device")
            .await
    );
    let device = gpc
        .script("return JSON.parse(localStorage.getItem('steward.consent')).device")
        .await;
    let party = device_of(&app, &device);
    let mut signalled = false;
    for _ in 0..50 {
        if app
            .ledger
            .signalled(&party, steward_core::consent::Signal::Gpc)
        {
            signalled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signalled, "the GPC signal is on the ledger");
    assert_eq!(
        app.ledger
            .permit(&party, "advertising")
            .unwrap()
            .reason
            .code(),
        "gpc-opt-out"
    );
    gpc.quit().await;
}
