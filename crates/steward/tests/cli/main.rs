//! The `steward` binary as a user runs it: commands, outputs and the documented exit codes
//! (0 success, 1 the declaration has errors, 2 a file cannot be read, parsed or written).

// Test code fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod datasets;
mod docs;
mod faults;
mod first_hour;
mod incidents;
mod limits;
mod operations;
mod requests;
mod scale;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An HTTP client for the tests. reqwest takes its TLS from rustls without a built-in crypto
/// provider (Steward's notifier brings its own configuration); the tests install ring, the
/// provider Steward uses everywhere, as the process default first.
fn client() -> reqwest::Client {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `GET url` with [`client`].
async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    client().get(url).send().await
}

fn steward() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env_remove("STEWARD_DECLARATION")
        .env_remove("STEWARD_LISTEN");
    cmd
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    steward()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run steward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

#[test]
fn a_newcomer_inits_checks_and_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let init = run(dir.path(), &["init"]);
    assert_eq!(code(&init), 0, "{}", stderr(&init));
    assert!(stderr(&init).contains("steward check"));
    let check = run(dir.path(), &["check"]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    assert!(stdout(&check).contains("privacy.toml: no problems found"));
    let notice = run(dir.path(), &["notice", "-o", "privacy.html"]);
    assert_eq!(code(&notice), 0, "{}", stderr(&notice));
    let html = std::fs::read_to_string(dir.path().join("privacy.html")).unwrap();
    assert!(html.contains("<h1>Privacy notice: Example Website</h1>"));
    let ropa = run(dir.path(), &["ropa", "--format", "xlsx", "-o", "ropa.xlsx"]);
    assert_eq!(code(&ropa), 0, "{}", stderr(&ropa));
    let xlsx = std::fs::read(dir.path().join("ropa.xlsx")).unwrap();
    assert_eq!(&xlsx[..2], b"PK", "an XLSX workbook is a ZIP file");
}

#[test]
fn init_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("privacy.toml"), "# mine\n").unwrap();
    let again = run(dir.path(), &["init"]);
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("privacy.toml")).unwrap(),
        "# mine\n"
    );
    let forced = run(dir.path(), &["init", "--force"]);
    assert_eq!(code(&forced), 0);
    assert!(
        std::fs::read_to_string(dir.path().join("privacy.toml"))
            .unwrap()
            .contains("[controller]")
    );
    let nested = run(dir.path(), &["init", "site/legal"]);
    assert_eq!(code(&nested), 0);
    assert!(dir.path().join("site/legal/privacy.toml").is_file());
    assert!(stderr(&nested).contains("steward check -d site/legal/privacy.toml"));
}

#[test]
fn all_five_seed_sites_check_clean() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "000-mallegro.toml",
        "001-wordpress-support-portal.toml",
        "002-mindlinksoft.toml",
        "003-allcot.toml",
        "004-mailpro.toml",
    ] {
        let out = run(
            dir.path(),
            &["check", "-d", example(name).to_str().unwrap()],
        );
        assert_eq!(code(&out), 0, "{name}: {}", stdout(&out));
    }
}

#[test]
fn check_exits_1_on_errors_and_lists_each_with_its_place_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("004-mailpro.toml"))
        .unwrap()
        .replace(
            "\"user.contact.email\", \"user.name\"]",
            "\"user.contact.emial\", \"user.name\"]",
        )
        .replace(
            "lifetime = \"13 months\"\n\n[[cookies]]\nname = \"__adroll\"",
            "lifetim = \"13 months\"\n\n[[cookies]]\nname = \"__adroll\"",
        );
    std::fs::write(dir.path().join("privacy.toml"), text).unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(code(&out), 1);
    let report = stdout(&out);
    assert!(
        report.contains("error[unknown-category]: unknown data category `user.contact.emial`"),
        "{report}"
    );
    assert!(report.contains("help: did you mean `user.contact.email`?"));
    assert!(report.contains("error[unknown-key]: unknown key `lifetim` in [[cookies]]"));
    assert!(report.contains("error[cookie-without-lifetime]"));
    assert!(report.contains("--> privacy.toml:"));

    let json = run(dir.path(), &["check", "--format", "json"]);
    assert_eq!(code(&json), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("one JSON object");
    assert_eq!(v["readable"], true);
    assert!(v["errors"].as_u64().unwrap() >= 4);
    let first = &v["diagnostics"][0];
    assert!(
        first["start"]["line"].as_u64().unwrap() > 0 && first["help"].is_string(),
        "{first}"
    );
}

#[test]
fn unreadable_declarations_exit_2_with_a_precise_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("syntax.toml"), "[policy]\nversion = \"1.0\n").unwrap();
    std::fs::write(
        d.join("type.toml"),
        "[policy]\nversion = 1.0\n[[purposes]]\nid = 7\n",
    )
    .unwrap();
    std::fs::write(d.join("empty.toml"), "").unwrap();
    std::fs::write(d.join("latin1.toml"), b"[controller]\nname = \"Caf\xe9\"\n").unwrap();
    let big = std::fs::File::create(d.join("big.toml")).unwrap();
    big.set_len(50 * 1024 * 1024).unwrap();
    for (file, expected) in [
        ("syntax.toml", "syntax.toml:2:"),
        ("type.toml", "error[wrong-type]"),
        ("empty.toml", "steward init"),
        (
            "latin1.toml",
            "latin1.toml:2:12: the file is not UTF-8 text",
        ),
        ("big.toml", "a declaration may be at most"),
        ("missing.toml", "cannot read missing.toml"),
    ] {
        let out = run(d, &["check", "-d", file]);
        assert_eq!(code(&out), 2, "{file}: {}{}", stdout(&out), stderr(&out));
        let all = stdout(&out) + &stderr(&out);
        assert!(all.contains(expected), "{file}: {all}");
        assert!(!all.contains("panicked"), "{file}: {all}");
        // The same in JSON.
        let json = run(d, &["check", "-d", file, "--format", "json"]);
        assert_eq!(code(&json), 2, "{file}");
        let v: serde_json::Value = serde_json::from_str(&stdout(&json))
            .unwrap_or_else(|e| panic!("{file}: {e}: {}", stdout(&json)));
        assert_eq!(v["readable"], false);
    }
}

#[test]
fn notice_and_ropa_refuse_a_declaration_with_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("privacy.toml"),
        "[policy]\nversion = \"1\"\n[controller]\nname = \"X\"\n",
    )
    .unwrap();
    let notice = run(dir.path(), &["notice", "-o", "out.html"]);
    assert_eq!(code(&notice), 1);
    assert!(stderr(&notice).contains("has no `country`"));
    assert!(!dir.path().join("out.html").exists());
    let ropa = run(dir.path(), &["ropa", "--format", "csv", "-o", "out.csv"]);
    assert_eq!(code(&ropa), 1);
    assert!(!dir.path().join("out.csv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn notice_and_ropa_write_every_format_to_stdout_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let decl = example("003-allcot.toml");
    let d = decl.to_str().unwrap();
    let md = run(dir.path(), &["notice", "-d", d, "--format", "md"]);
    assert_eq!(code(&md), 0);
    assert!(stdout(&md).starts_with("# Privacy notice: ALLCOT\n"));
    let csv = run(dir.path(), &["ropa", "-d", d, "--format", "csv"]);
    assert_eq!(code(&csv), 0);
    assert!(stdout(&csv).starts_with("Controller,Controller contact,Data protection officer"));
    assert!(stdout(&csv).lines().count() > 11);
    let json = run(
        dir.path(),
        &[
            "ropa",
            "-d",
            d,
            "--format",
            "json",
            "-o",
            "nested/ropa.json",
        ],
    );
    assert_eq!(code(&json), 2, "a missing output folder is a write error");
    assert!(stderr(&json).contains("cannot write nested/ropa.json"));
    let json = run(
        dir.path(),
        &["ropa", "-d", d, "--format", "json", "-o", "ropa.json"],
    );
    assert_eq!(code(&json), 0);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ropa.json")).unwrap()).unwrap();
    assert_eq!(v["activities"].as_array().unwrap().len(), 11);
}

#[test]
fn the_declaration_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .current_dir(dir.path())
        .env("STEWARD_DECLARATION", example("002-mindlinksoft.toml"))
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("002-mindlinksoft.toml"));
}

/// A child process killed when the test ends, even by a failed assertion.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `steward serve`'s startup lines up to its base URL (`http://127.0.0.1:PORT`).
fn server_base(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines
        .take(20)
        .map_while(Result::ok)
        .find_map(|l| {
            let rest = l.trim().strip_prefix("http://")?;
            let address = rest.split_whitespace().next()?.trim_end_matches("/privacy");
            Some(format!("http://{address}"))
        })
        .expect("the server prints its address")
}

#[test]
fn serve_publishes_the_notice_and_stops_cleanly_on_interrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = steward()
        .current_dir(dir.path())
        .args([
            "serve",
            "-d",
            example("004-mailpro.toml").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut child = Running(child);
    let url = format!("{}/privacy", server_base(lines.by_ref()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(async { crate::get(&url).await.unwrap().text().await.unwrap() });
    assert!(body.contains("Privacy notice: Mailpro"));
    let killed = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(lines.map_while(Result::ok).any(|l| l == "stopped"));
}

#[test]
fn serve_reports_a_busy_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = steward()
        .current_dir(dir.path())
        .args([
            "serve",
            "-d",
            example("004-mailpro.toml").to_str().unwrap(),
            "--listen",
            &address,
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&format!("cannot listen on {address}")));
}

#[test]
fn taxonomy_finds_keys_by_word() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["taxonomy", "e-mail"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("user.contact.email") && text.contains("marketing.communications.email"),
        "{text}"
    );
    let subjects = run(dir.path(), &["taxonomy", "--kind", "subjects"]);
    assert!(stdout(&subjects).contains("customer") && !stdout(&subjects).contains("user.contact"));
    let none = run(dir.path(), &["taxonomy", "zzzz"]);
    assert_eq!(code(&none), 1);
    assert!(stderr(&none).contains("no key matches"));
}

mod vault {
    use super::*;

    fn starter(dir: &Path) {
        assert_eq!(code(&run(dir, &["init"])), 0);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_corrected_address_is_the_identity_and_kept_invoices_serve_accounting_after_an_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let decl = example("004-mailpro.toml");
        let decl = decl.to_str().unwrap();
        write(
            d,
            "people.csv",
            "email,user.name\nada@example.com,Ada\nbob@example.com,Bob\n",
        );
        let import = run(
            d,
            &["-d", decl, "import", "--purpose", "account", "people.csv"],
        );
        assert_eq!(code(&import), 0, "{}", stderr(&import));
        let find = |email: &str| run(d, &["-d", decl, "subject", "find", "--email", email]);
        let id = stdout(&find("ada@example.com")).trim().to_owned();

        let corrected = run(
            d,
            &[
                "-d",
                decl,
                "subject",
                "correct",
                &id,
                "--purpose",
                "account",
                "--set",
                "user.contact.email=Ada@New.example",
            ],
        );
        assert_eq!(code(&corrected), 0, "{}", stderr(&corrected));
        assert_eq!(
            stdout(&find("ada@new.example")).trim(),
            id,
            "the new address finds Ada"
        );
        assert_eq!(
            code(&find("ada@example.com")),
            1,
            "the old one finds nobody"
        );
        let taken = run(
            d,
            &[
                "-d",
                decl,
                "subject",
                "correct",
                &id,
                "--purpose",
                "account",
                "--set",
                "user.contact.email=bob@example.com",
            ],
        );
        assert_eq!(code(&taken), 1);
        assert!(
            stderr(&taken).contains("already belongs to another subject")
                && !stderr(&taken).contains("bob@"),
            "{}",
            stderr(&taken)
        );
        let bad = run(
            d,
            &[
                "-d",
                decl,
                "subject",
                "correct",
                &id,
                "--purpose",
                "account",
                "--set",
                "user.name",
            ],
        );
        assert_eq!(code(&bad), 1);
        assert!(stderr(&bad).contains("CATEGORY=VALUE"), "{}", stderr(&bad));

        let invoice = run(
            d,
            &[
                "-d",
                decl,
                "subject",
                "correct",
                &id,
                "--purpose",
                "invoicing",
                "--set",
                "user.financial=Invoice 2026-9: CHF 99",
            ],
        );
        assert_eq!(code(&invoice), 0, "{}", stderr(&invoice));
        let erase = run(d, &["-d", decl, "erase", "--subject", &id]);
        assert_eq!(code(&erase), 0, "{}", stderr(&erase));
        let show = run(
            d,
            &["-d", decl, "subject", "show", &id, "--purpose", "invoicing"],
        );
        assert_eq!(code(&show), 0, "{}", stderr(&show));
        assert!(
            stdout(&show).contains("Invoice 2026-9: CHF 99") && stdout(&show).contains("\"staff\""),
            "the kept invoice serves accounting, with its source: {}",
            stdout(&show)
        );
        let gone = run(
            d,
            &["-d", decl, "subject", "show", &id, "--purpose", "account"],
        );
        assert_eq!(code(&gone), 1, "{}", stdout(&gone));
        let package = run(
            d,
            &[
                "-d",
                decl,
                "export",
                "--email",
                "ada@new.example",
                "-o",
                "ada.zip",
            ],
        );
        assert_eq!(code(&package), 0, "{}", stderr(&package));
        let mut zip =
            zip::ZipArchive::new(std::fs::File::open(d.join("ada.zip")).unwrap()).unwrap();
        let mut held = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("csv/held.csv").unwrap(), &mut held)
            .unwrap();
        assert!(held.contains("Invoice 2026-9: CHF 99"), "{held}");
    }

    #[test]
    fn import_find_show_and_erase_a_person() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(
            d,
            "people.csv",
            "email,user.account.username\nAda@Example.com,ada\nbob@example.com,bob\n",
        );
        let import = run(d, &["import", "--purpose", "accounts", "people.csv"]);
        assert_eq!(code(&import), 0, "{}", stderr(&import));
        assert!(
            stderr(&import).contains("imported 2 subjects"),
            "{}",
            stderr(&import)
        );
        assert!(
            stderr(&import).contains("BACK IT UP NOW"),
            "the first use announces the new master key"
        );
        let key_file = d.join("steward-data/master.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let key = std::fs::read_to_string(&key_file).unwrap();
        assert!(
            !stderr(&import).contains(key.trim()),
            "the key itself is never printed"
        );

        let find = run(d, &["subject", "find", "--email", " ADA@example.com "]);
        assert_eq!(code(&find), 0, "{}", stderr(&find));
        let id = stdout(&find).trim().to_owned();
        let show = run(d, &["subject", "show", &id, "--purpose", "accounts"]);
        assert_eq!(code(&show), 0, "{}", stderr(&show));
        let view: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
        assert_eq!(view["identities"][0][1], "ada@example.com");
        assert_eq!(view["fields"][0]["category"], "user.account.username");
        assert_eq!(view["fields"][0]["source"], "import");
        let analytics = run(d, &["subject", "show", &id, "--purpose", "analytics"]);
        assert_eq!(
            code(&analytics),
            1,
            "analytics needs consent Ada never gave"
        );
        assert!(
            stderr(&analytics).contains("no-consent") && stdout(&analytics).is_empty(),
            "{}",
            stderr(&analytics)
        );
        let comments = run(d, &["subject", "show", &id, "--purpose", "comments"]);
        let view: serde_json::Value = serde_json::from_str(&stdout(&comments)).unwrap();
        assert_eq!(
            view["fields"].as_array().unwrap().len(),
            0,
            "comments may not see the username, which it does not declare"
        );

        let dry = run(d, &["erase", "--email", "ada@example.com", "--dry-run"]);
        assert_eq!(code(&dry), 0, "{}", stderr(&dry));
        assert!(
            stdout(&dry).contains("nothing was changed")
                && stdout(&dry).contains("user.contact.email")
        );
        assert_eq!(
            code(&run(d, &["subject", "find", "--email", "ada@example.com"])),
            0,
            "a dry run erases nothing"
        );
        let erase = run(d, &["erase", "--email", "ada@example.com"]);
        assert_eq!(code(&erase), 0, "{}", stderr(&erase));
        let receipt: serde_json::Value = serde_json::from_str(&stdout(&erase)).unwrap();
        assert_eq!(receipt["subject"], id.as_str());
        assert!(
            !stdout(&erase).contains("ada@"),
            "the receipt holds no personal data"
        );
        let gone = run(d, &["subject", "find", "--email", "ada@example.com"]);
        assert_eq!(code(&gone), 1);
        assert_eq!(stderr(&gone).trim(), "no subject has this email");
        assert_eq!(
            code(&run(d, &["subject", "find", "--email", "bob@example.com"])),
            0,
            "others stay"
        );
    }

    #[test]
    fn a_file_with_bad_lines_writes_nothing_and_names_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(
            d,
            "people.csv",
            "email,user.account.username\nok@example.com,ok\nnot-an-address,x\nok@example.com,again\n,nobody\nshort\n",
        );
        let out = run(d, &["import", "--purpose", "accounts", "people.csv"]);
        assert_eq!(code(&out), 1);
        let err = stderr(&out);
        for expected in [
            "people.csv:3: the e-mail address is not valid: it has no @",
            "people.csv:4: has the same email as line 2",
            "people.csv:5: gives no identity",
            "people.csv:6: has 1 value where the header has 2",
            "4 bad lines; nothing was written",
        ] {
            assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
        }
        assert!(!err.contains("not-an-address"), "values are never echoed");
        write(d, "good.csv", "email\nok@example.com\n");
        assert_eq!(
            code(&run(d, &["import", "--purpose", "accounts", "good.csv"])),
            0
        );
        assert_eq!(
            code(&run(
                d,
                &["subject", "find", "--email", "not-an-address@x.ch"]
            )),
            1
        );

        write(d, "columns.csv", "email,user.nmae\na@example.com,A\n");
        let out = run(d, &["import", "--purpose", "accounts", "columns.csv"]);
        assert_eq!(code(&out), 1);
        assert!(
            stderr(&out).contains("did you mean `user.name`?"),
            "{}",
            stderr(&out)
        );
        write(
            d,
            "notallowed.csv",
            "email,user.financial\na@example.com,IBAN\n",
        );
        let out = run(d, &["import", "--purpose", "accounts", "notallowed.csv"]);
        assert!(
            stderr(&out).contains("purpose `accounts` may not collect `user.financial`"),
            "{}",
            stderr(&out)
        );
    }

    #[test]
    fn importing_again_after_an_interruption_creates_no_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(
            d,
            "first.jsonl",
            "{\"email\": \"a@example.com\"}\n{\"email\": \"b@example.com\"}\n",
        );
        assert_eq!(
            code(&run(
                d,
                &["import", "--purpose", "newsletter", "first.jsonl"]
            )),
            0
        );
        write(
            d,
            "all.jsonl",
            "{\"email\": \"a@example.com\"}\n{\"email\": \"b@example.com\"}\n{\"email\": \"c@example.com\", \"user.name.first\": \"Cy\"}\n",
        );
        let again = run(
            d,
            &[
                "import",
                "--purpose",
                "newsletter",
                "--batch",
                "2",
                "all.jsonl",
            ],
        );
        assert_eq!(code(&again), 0, "{}", stderr(&again));
        assert!(
            stderr(&again).contains("imported 1 subject (2 already in the vault, skipped)"),
            "{}",
            stderr(&again)
        );
        // The people skipped are counted, not audited one by one as failed writes.
        let trail = run(d, &["audit", "export", "--format", "csv"]);
        let trail = String::from_utf8_lossy(&trail.stdout).into_owned();
        assert!(
            !trail.contains("duplicate"),
            "a skipped person left a failed entry:\n{trail}"
        );
        assert_eq!(
            trail
                .lines()
                .filter(|l| l.contains("subject.import"))
                .count(),
            2,
            "one entry per batch written (the first run's, and the one new subject's): {trail}"
        );
    }

    #[test]
    fn a_line_too_long_to_be_a_person_is_refused_by_number_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        let long = "x".repeat(2 << 20);
        write(
            d,
            "people.csv",
            &format!("email,user.name\nfirst@example.com,First\nsecond@example.com,{long}\n"),
        );
        write(
            d,
            "people.jsonl",
            &format!("{{\"email\": \"first@example.com\"}}\n\n{{\"email\": \"{long}\"}}\n"),
        );
        for (file, line) in [("people.csv", 3), ("people.jsonl", 3)] {
            let out = run(d, &["import", "--purpose", "accounts", file]);
            assert_ne!(code(&out), 0);
            let err = stderr(&out);
            assert!(
                err.contains(&format!("{file}:{line}: the line is longer than 1 MiB"))
                    && err.contains("Nothing was written"),
                "{err}"
            );
            assert!(
                err.len() < 2000,
                "the line is not echoed: {} bytes",
                err.len()
            );
        }
        assert_eq!(
            code(&run(
                d,
                &["subject", "find", "--email", "first@example.com"]
            )),
            1,
            "nothing of a refused file is written"
        );
    }

    #[test]
    fn rotating_the_master_key_keeps_every_subject_readable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(
            d,
            "p.csv",
            "email\na@example.com\nb@example.com\nc@example.com\n",
        );
        assert_eq!(
            code(&run(d, &["import", "--purpose", "accounts", "p.csv"])),
            0
        );
        let old = std::fs::read_to_string(d.join("steward-data/master.key")).unwrap();
        let rotate = run(d, &["keys", "rotate", "--batch", "2"]);
        assert_eq!(code(&rotate), 0, "{}", stderr(&rotate));
        assert!(
            stderr(&rotate).contains("re-wrapped 3 keys under master key generation 2"),
            "{}",
            stderr(&rotate)
        );
        let new = std::fs::read_to_string(d.join("steward-data/master.key")).unwrap();
        assert_ne!(old, new);
        assert!(!d.join("steward-data/master.key.next").exists());
        assert_eq!(
            code(&run(d, &["subject", "find", "--email", "b@example.com"])),
            0
        );
        let with_old = steward()
            .current_dir(d)
            .env("STEWARD_MASTER_KEY", old.trim())
            .args(["subject", "find", "--email", "b@example.com"])
            .output()
            .unwrap();
        assert_eq!(code(&with_old), 2, "the old key no longer opens the store");
    }

    #[test]
    fn a_wrong_master_key_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(d, "p.csv", "email\na@example.com\n");
        assert_eq!(
            code(&run(d, &["import", "--purpose", "accounts", "p.csv"])),
            0
        );
        let wrong = steward()
            .current_dir(d)
            .env(
                "STEWARD_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .args(["subject", "find", "--email", "a@example.com"])
            .output()
            .unwrap();
        assert_eq!(code(&wrong), 2);
        assert!(
            stderr(&wrong).contains("the master key does not match this data store"),
            "{}",
            stderr(&wrong)
        );
        let bad = steward()
            .current_dir(d)
            .env("STEWARD_MASTER_KEY", "short")
            .args(["subject", "find", "--email", "a@example.com"])
            .output()
            .unwrap();
        assert_eq!(code(&bad), 2);
        assert!(
            stderr(&bad).contains("STEWARD_MASTER_KEY: the master key must be 32 random bytes"),
            "{}",
            stderr(&bad)
        );
    }

    #[test]
    fn the_vault_runs_on_postgresql_with_a_database_url() {
        let Ok(admin) = std::env::var("STEWARD_TEST_POSTGRES") else {
            steward_core::conformance::skipped(
                "PostgreSQL",
                "set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres",
            );
            return;
        };
        let name = format!("steward_cli_{}", std::process::id());
        let psql = |sql: &str| {
            Command::new("psql")
                .args([admin.as_str(), "-qtAc", sql])
                .stderr(Stdio::null())
                .status()
                .unwrap()
        };
        assert!(psql(&format!("DROP DATABASE IF EXISTS {name}")).success());
        assert!(psql(&format!("CREATE DATABASE {name}")).success());
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        starter(d);
        write(d, "p.csv", "email\npg@example.com\n");
        let pg = |args: &[&str]| {
            steward()
                .current_dir(d)
                .env("STEWARD_DATABASE_URL", &url)
                .args(args)
                .output()
                .unwrap()
        };
        let import = pg(&["import", "--purpose", "accounts", "p.csv"]);
        assert_eq!(code(&import), 0, "{}", stderr(&import));
        assert_eq!(
            code(&pg(&["subject", "find", "--email", "pg@example.com"])),
            0
        );
        assert!(
            !d.join("steward-data/steward.db").exists(),
            "no SQLite file when PostgreSQL is used"
        );
        assert_eq!(code(&pg(&["erase", "--email", "pg@example.com"])), 0);
        assert_eq!(
            code(&pg(&["subject", "find", "--email", "pg@example.com"])),
            1
        );
        assert!(psql(&format!("DROP DATABASE {name} WITH (FORCE)")).success());
    }
}

#[test]
fn an_api_key_from_the_cli_opens_the_api_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let decl = example("004-mailpro.toml");
    let decl = decl.to_str().unwrap();
    let created = run(
        d,
        &[
            "apikey", "create", "--role", "service", "--name", "shop", "-d", decl,
        ],
    );
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let key = stdout(&created).trim().to_owned();
    assert!(key.starts_with("stw_") && key.len() > 40, "{key}");
    assert!(
        !stderr(&created).contains(&key),
        "the key goes to stdout only, once"
    );
    let prefix = key[..12].to_owned();

    let mut child = steward()
        .current_dir(d)
        .args(["serve", "-d", decl, "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut child = Running(child);
    let base = server_base(lines.by_ref());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let post = |key: String| {
        let url = format!("{base}/v1/subjects");
        runtime.block_on(async move {
            crate::client()
                .post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({ "purpose": "newsletter", "identities": [{ "kind": "email", "value": "cli@example.com" }] }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(post(key.clone()), 201);
    let revoked = run(d, &["apikey", "revoke", &prefix, "-d", decl]);
    assert_eq!(code(&revoked), 0, "{}", stderr(&revoked));
    assert_eq!(
        post(key),
        401,
        "a revoked key is refused at once, without restarting the server"
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
}

#[test]
fn a_missing_logo_is_found_by_check_and_stops_serve_before_it_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("004-mailpro.toml")).unwrap()
        + "\n[centre]\nlogo = \"brand/logo.svg\"\n";
    std::fs::write(dir.path().join("privacy.toml"), text).unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let report = stdout(&out);
    assert!(
        report.contains("error[bad-logo]") && report.contains("brand/logo.svg"),
        "{report}"
    );
    let out = run(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_ne!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the logo"));
    assert!(
        !dir.path().join("steward-data").exists(),
        "nothing was created"
    );
    // With the file there, both accept it.
    std::fs::create_dir_all(dir.path().join("brand")).unwrap();
    std::fs::write(
        dir.path().join("brand/logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
