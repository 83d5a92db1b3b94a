//! What `steward serve` tells its operator (issue 16): a log line per request, and metrics
//! that move — and never a person's data in the log.

use std::path::Path;

use serde_json::{Value, json};

use super::first_hour::Server;
use super::{code, run, stdout};

pub(crate) async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) fn key(dir: &Path, role: &str) -> String {
    let out = run(dir, &["apikey", "create", "--role", role, "--name", role]);
    assert_eq!(code(&out), 0);
    stdout(&out).trim().to_owned()
}

/// The value of the series `name` (with its labels) in a Prometheus text, 0 when absent.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_full_flow_leaves_no_personal_value_in_the_log_and_moves_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    let admin = key(d, "admin");
    let auditor = key(d, "auditor");
    let service = key(d, "service");
    let server = Server::start(d, &["--log-format", "json"]);
    let base = server.base.clone();
    let (email, name, new_name) = (
        "zoe.private@example.com",
        "Zoë Privatperson",
        "Zoë Umbenannt",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (before, after) = runtime.block_on(async {
        let client = crate::client();
        let metrics = || async {
            client
                .get(format!("{base}/metrics"))
                .bearer_auth(&auditor)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let before = metrics().await;
        let (status, created) = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/subjects"),
            &admin,
            Some(json!({ "purpose": "accounts", "identities": [{ "kind": "email", "value": email }], "fields": { "user.name": name } })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (status, _) = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/subjects/lookup"),
            &admin,
            Some(json!({ "kind": "email", "value": email })),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = call(
            &client,
            reqwest::Method::PATCH,
            format!("{base}/v1/subjects/{id}/fields"),
            &admin,
            Some(json!({ "purpose": "accounts", "category": "user.name", "value": new_name })),
        )
        .await;
        assert_eq!(status, 204);
        for _ in 0..3 {
            let (status, permit) = call(
                &client,
                reqwest::Method::GET,
                format!("{base}/v1/permits?subject={id}&purpose=newsletter"),
                &admin,
                None,
            )
            .await;
            assert_eq!((status, permit["reason"].as_str()), (200, Some("no-consent")));
        }
        // A person's own request, with the address in the body.
        let r = client
            .post(format!("{base}/requests"))
            .json(&json!({ "kind": "access", "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let (status, _) = call(
            &client,
            reqwest::Method::DELETE,
            format!("{base}/v1/subjects/{id}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(status, 200);
        // A key that may not read the audit may not read the metrics either.
        let refused = client
            .get(format!("{base}/metrics"))
            .bearer_auth(&service)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(refused, 403);
        // The request's mail goes out from the job queue, within a second or two.
        let delivered = r#"steward_deliveries_total{channel="mail",outcome="written"}"#;
        let mut after = metrics().await;
        for _ in 0..40 {
            if series(&after, delivered) > 0.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            after = metrics().await;
        }
        (before, after)
    });
    for (series_name, at_least) in [
        (
            r#"steward_http_requests_total{route="/v1/subjects",method="POST",status="201"}"#,
            1.0,
        ),
        (
            r#"steward_http_requests_total{route="/v1/subjects/{id}",method="DELETE",status="200"}"#,
            1.0,
        ),
        (r#"steward_permits_total{reason="no-consent"}"#, 3.0),
        (
            r#"steward_deliveries_total{channel="mail",outcome="written"}"#,
            1.0,
        ),
        (
            r#"steward_http_request_duration_seconds_count{route="/v1/permits"}"#,
            3.0,
        ),
    ] {
        assert!(
            series(&after, series_name) - series(&before, series_name) >= at_least,
            "{series_name} did not move by {at_least}:\n{after}"
        );
    }
    assert!(
        series(&after, r#"steward_requests{state="open"}"#) >= 1.0,
        "the person's request is open:\n{after}"
    );

    // Everything the server logged, as JSON lines: none holds a value of the person.
    drop(server.child);
    let mut log = Vec::new();
    while let Ok(line) = server.lines.recv_timeout(std::time::Duration::from_secs(2)) {
        log.push(line);
    }
    assert!(
        log.iter().all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "--log-format json writes one JSON object per line, the start and stop too:\n{log:#?}"
    );
    let answered: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "answered")
        .collect();
    assert!(answered.len() >= 9, "a line per request: {log:#?}");
    assert!(
        answered
            .iter()
            .all(|v| v["request_id"].is_string() && v["route"].is_string() && v["status"].is_u64()),
        "{answered:#?}"
    );
    let text = log.join("\n");
    for value in [email, "zoe.private", name, new_name, "Privatperson"] {
        assert!(!text.contains(value), "the log holds `{value}`:\n{text}");
    }
}

#[test]
fn a_configuration_file_sets_what_flags_and_variables_do_not_and_names_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    std::fs::write(
        d.join("smtp-url"),
        "smtps://mailer:hunter2@smtp.example.com:465\n",
    )
    .unwrap();
    std::fs::write(
        d.join("steward.toml"),
        "listen = \"127.0.0.1:18700\"\nrequest_rate_email = \"3/hour\"\nlog_format = \"json\"\nsmtp_url_file = \"smtp-url\"\nwatch = true\n",
    )
    .unwrap();
    let printed = super::steward()
        .current_dir(d)
        .env("STEWARD_LOG_FORMAT", "pretty")
        .args(["serve", "--print-config", "--request-rate-email", "4/hour"])
        .output()
        .unwrap();
    assert_eq!(code(&printed), 0, "{}", super::stderr(&printed));
    let text = stdout(&printed);
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .to_owned()
    };
    assert!(
        line("listen").contains("127.0.0.1:18700")
            && line("listen").ends_with("configuration file")
    );
    assert!(
        line("request_rate_email").contains("4/hour")
            && line("request_rate_email").ends_with("command line")
    );
    assert!(line("log_format").contains("pretty") && line("log_format").ends_with("environment"));
    assert!(line("watch").contains("true"));
    assert!(
        line("smtp_url").contains("smtps://****@smtp.example.com:465")
            && line("smtp_url").ends_with("secret file"),
        "{}",
        line("smtp_url")
    );
    assert!(
        !text.contains("hunter2") && !text.contains("mailer"),
        "the credentials are masked:\n{text}"
    );
    assert!(line("lookup_rate_ip").ends_with("default"));

    std::fs::write(d.join("steward.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let wrong = run(d, &["serve", "--print-config"]);
    assert_eq!(code(&wrong), 2);
    assert!(
        super::stderr(&wrong)
            .contains("steward.toml: `lisen` is not a setting — did you mean `listen`?"),
        "{}",
        super::stderr(&wrong)
    );
}

#[test]
fn a_secret_file_must_be_one_line_of_a_regular_file_and_is_read_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    std::fs::write(d.join("two-lines"), "smtps://u:one@h:465\nsecond-SECRET\n").unwrap();
    std::fs::write(d.join("steward.toml"), "smtp_url_file = \"two-lines\"\n").unwrap();
    let out = run(d, &["serve", "--print-config"]);
    assert_eq!(code(&out), 2);
    assert!(
        super::stderr(&out).contains("has more than one line")
            && !super::stderr(&out).contains("SECRET"),
        "{}",
        super::stderr(&out)
    );
    // A device would never end: refused, not read.
    std::fs::write(d.join("steward.toml"), "smtp_url_file = \"/dev/zero\"\n").unwrap();
    let out = run(d, &["serve", "--print-config"]);
    assert_eq!(code(&out), 2);
    assert!(
        super::stderr(&out).contains("is not a regular file"),
        "{}",
        super::stderr(&out)
    );
    // A flag that gives the value means the file is never opened.
    let out = run(
        d,
        &[
            "serve",
            "--print-config",
            "--smtp-url",
            "smtp://127.0.0.1:25",
        ],
    );
    assert_eq!(code(&out), 0, "{}", super::stderr(&out));
    // A switch is true or false, nothing else; and -d counts as --declaration.
    std::fs::write(d.join("steward.toml"), "watch = \"yes\"\n").unwrap();
    let out = run(d, &["serve", "--print-config"]);
    assert_eq!(code(&out), 2);
    assert!(
        super::stderr(&out).contains("`watch` is a switch"),
        "{}",
        super::stderr(&out)
    );
    std::fs::write(d.join("steward.toml"), "declaration = \"other.toml\"\n").unwrap();
    let out = run(d, &["-d", "privacy.toml", "check"]);
    assert_eq!(code(&out), 0, "{}", super::stderr(&out));
}

#[test]
fn serve_refuses_a_webhook_ca_bundle_it_cannot_use_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    std::fs::write(d.join("ca.pem"), "not a certificate\n").unwrap();
    for (file, says) in [
        ("ca.pem", "holds no certificate"),
        ("missing.pem", "cannot read the webhook CA bundle"),
    ] {
        let out = run(
            d,
            &["serve", "--listen", "127.0.0.1:0", "--webhook-ca", file],
        );
        let err = super::stderr(&out);
        assert_eq!(code(&out), 2, "{err}");
        assert!(err.contains(says) && err.contains(file), "{err}");
        assert!(
            err.contains("--webhook-ca"),
            "the help names the setting: {err}"
        );
        assert!(!err.contains("Steward is serving"), "{err}");
    }
    // The configuration file and --print-config know the setting.
    std::fs::write(d.join("steward.toml"), "webhook_ca = \"ca.pem\"\n").unwrap();
    let out = run(d, &["serve", "--print-config"]);
    assert_eq!(code(&out), 0, "{}", super::stderr(&out));
    let printed = format!("{}{}", stdout(&out), super::stderr(&out));
    assert!(
        printed.contains("webhook_ca") && printed.contains("ca.pem"),
        "{printed}"
    );
}

#[test]
fn a_variable_beats_the_configuration_file_and_a_bad_value_there_is_named_by_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    std::fs::write(d.join("smtp-url"), "smtp://127.0.0.1:2525\n").unwrap();
    let write = |text: &str| std::fs::write(d.join("steward.toml"), text).unwrap();
    let print = |env: &[(&str, &str)]| {
        let mut command = super::steward();
        command.current_dir(d).args(["serve", "--print-config"]);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    // A secret file named by a variable beats the file's own value.
    write("smtp_url = \"smtps://user:hunter2@mail.example.com:465\"\n");
    let out = print(&[("STEWARD_SMTP_URL_FILE", "smtp-url")]);
    assert_eq!(code(&out), 0, "{}", super::stderr(&out));
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("smtp_url")).unwrap();
    assert!(
        line.contains("127.0.0.1:2525") && line.contains("secret file"),
        "{text}"
    );
    // Every serve setting has its variable, and it beats the file.
    write("request_rate_email = \"3/hour\"\nmax_connections = 9\n");
    let out = print(&[
        ("STEWARD_REQUEST_RATE_EMAIL", "9/hour"),
        ("STEWARD_MAX_CONNECTIONS", "5"),
    ]);
    let text = stdout(&out);
    for (key, value) in [("request_rate_email", "9/hour"), ("max_connections", "5")] {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(
            line.contains(value) && line.contains("environment"),
            "{text}"
        );
    }
    // Both a secret and its file in the configuration: refused, naming both.
    write("smtp_url = \"smtp://a:25\"\nsmtp_url_file = \"smtp-url\"\n");
    let out = print(&[]);
    assert_eq!(code(&out), 2);
    let err = super::stderr(&out);
    assert!(
        err.contains("smtp_url_file") && err.contains("keep one"),
        "{err}"
    );
    // A bad value in the file is named by the file and its key, not a flag.
    for (text, key) in [
        ("log_format = \"xml\"\n", "log_format"),
        ("max_connections = \"lots\"\n", "max_connections"),
    ] {
        write(text);
        let out = print(&[]);
        assert_eq!(code(&out), 2, "{text}");
        let err = super::stderr(&out);
        assert!(
            err.contains("steward.toml")
                && err.contains(&format!("`{key}`"))
                && !err.contains("--"),
            "{err}"
        );
    }
}
