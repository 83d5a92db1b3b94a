//! Headless Chromium, driven over the WebDriver protocol by chromedriver.
//!
//! The test is skipped, loudly, where chromedriver is not installed, unless
//! `STEWARD_TEST_BROWSER` is set (as `.ci/run` does), in which case its absence fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{example, spawn};

struct Driver {
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
    async fn start() -> Option<Self> {
        let Some(chromedriver) = find("chromedriver") else {
            assert!(
                std::env::var_os("STEWARD_TEST_BROWSER").is_none(),
                "STEWARD_TEST_BROWSER is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: browser test — chromedriver is not installed (set STEWARD_TEST_BROWSER=1 to require it)"
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
        let client = reqwest::Client::new();
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

    async fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let reply = post(&self.client, url, &body).await;
        reply["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
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
