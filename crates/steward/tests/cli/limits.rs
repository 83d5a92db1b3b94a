//! Rate limits hold across processes: two `steward serve` on one database (the same SQLite
//! data folder; the same PostgreSQL when `STEWARD_TEST_POSTGRES` is set) share one budget per
//! address and per identity, and a flood of made-up keys fills neither the audit nor memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Running, code, example, server_base, stderr, steward};

/// Starts `steward serve` in `dir` (over `database`, if given) with `flags`; its base URL.
pub(super) fn serve(dir: &Path, database: Option<&str>, flags: &[&str]) -> (Running, String) {
    let decl = example("004-mailpro.toml");
    let mut cmd = steward();
    cmd.current_dir(dir)
        .args([
            "serve",
            "-d",
            decl.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(flags)
        .stderr(Stdio::piped());
    if let Some(url) = database {
        cmd.env("STEWARD_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let running = Running(child);
    let base = server_base(lines.by_ref());
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (running, base)
}

/// A database of its own on `STEWARD_TEST_POSTGRES`, dropped at the end.
pub(super) struct PgDatabase {
    admin: String,
    name: String,
    pub(super) url: String,
}

impl PgDatabase {
    pub(super) fn create() -> Option<Self> {
        let Ok(admin) = std::env::var("STEWARD_TEST_POSTGRES") else {
            steward_core::conformance::skipped(
                "PostgreSQL",
                "set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres",
            );
            return None;
        };
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "steward_limits_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let db = Self {
            url: format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
            admin,
            name,
        };
        db.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
        db.psql(&format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn psql(&self, sql: &str) {
        let ok = Command::new("psql")
            .args([self.admin.as_str(), "-qtAc", sql])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "{sql}");
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.admin.as_str(),
                "-qtAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .stderr(Stdio::null())
            .status();
    }
}

/// Two servers on one database: intake, sign-in and key guessing share one budget.
fn two_servers_share_one_budget(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Per day, so that no window ends while the test runs.
    let flags = [
        "--request-rate-ip",
        "20/day",
        "--signin-rate-user",
        "6/day",
        "--auth-failure-rate-ip",
        "5/day",
    ];
    let (_a, a) = serve(d, database, &flags);
    let (_b, b) = serve(d, database, &flags);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = crate::client();
    let statuses = |calls: Vec<(String, serde_json::Value, Option<&'static str>)>| {
        runtime.block_on(async {
            let mut out = Vec::new();
            for (url, body, key) in calls {
                let mut r = client.post(url).json(&body);
                if let Some(k) = key {
                    r = r.bearer_auth(k);
                }
                out.push(r.send().await.unwrap().status().as_u16());
            }
            out
        })
    };
    let count = |s: &[u16], n: u16| s.iter().filter(|x| **x == n).count();

    // 30 public requests from one address, alternating between the two servers: 20 in all.
    let intake = statuses(
        (0..30)
            .map(|n| {
                let base = if n % 2 == 0 { &a } else { &b };
                (
                    format!("{base}/requests"),
                    serde_json::json!({ "kind": "access", "email": format!("p{n}@example.com") }),
                    None,
                )
            })
            .collect(),
    );
    assert_eq!(
        (count(&intake, 202), count(&intake, 429)),
        (20, 10),
        "{intake:?}"
    );

    // Sign-in guesses for one name: 6 in all, not 6 per server.
    let guesses = statuses(
        (0..10)
            .map(|n| {
                let base = if n % 2 == 0 { &a } else { &b };
                (
                    format!("{base}/v1/session"),
                    serde_json::json!({ "username": "alice", "password": "guess-number-{n}" }),
                    None,
                )
            })
            .collect(),
    );
    assert_eq!(
        (count(&guesses, 401), count(&guesses, 429)),
        (6, 4),
        "{guesses:?}"
    );

    // Made-up keys: 5 refusals audited, then 429 — and one audit entry for the flood.
    let made_up = "stw_00000000_0000000000000000000000000000000000000000000";
    let flood = statuses(
        (0..200)
            .map(|n| {
                let base = if n % 2 == 0 { &a } else { &b };
                (
                    format!("{base}/v1/subjects"),
                    serde_json::json!({}),
                    Some(made_up),
                )
            })
            .collect(),
    );
    assert_eq!((count(&flood, 401), count(&flood, 429)), (5, 195));
    let decl = example("004-mailpro.toml");
    let mut export = steward();
    export.current_dir(d).args([
        "audit",
        "export",
        "--format",
        "csv",
        "-d",
        decl.to_str().unwrap(),
    ]);
    if let Some(url) = database {
        export.env("STEWARD_DATABASE_URL", url);
    }
    let export = export.output().unwrap();
    assert_eq!(code(&export), 0, "{}", stderr(&export));
    let csv = String::from_utf8_lossy(&export.stdout).into_owned();
    let auth_rows = csv.lines().filter(|l| l.contains(",auth,")).count();
    // 5 refusals, then the first 429 of each process; not 200.
    assert!(
        (5..=7).contains(&auth_rows),
        "{auth_rows} auth rows:\n{csv}"
    );
}

#[test]
fn two_servers_on_one_sqlite_folder_share_their_rate_limits() {
    two_servers_share_one_budget(None);
}

#[test]
fn two_servers_on_one_postgresql_share_their_rate_limits() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    two_servers_share_one_budget(Some(&db.url));
}

/// Creates a subject through the running server; its status.
fn create(base: &str, email: &str, key: &str) -> u16 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        crate::client()
            .post(format!("{base}/v1/subjects"))
            .bearer_auth(key)
            .json(&serde_json::json!({ "purpose": "account", "identities": [{ "kind": "email", "value": email }] }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn commands_beside_a_running_server_never_cost_it_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let decl = example("004-mailpro.toml");
    let decl = decl.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = steward()
            .current_dir(d)
            .args(args)
            .args(["-d", decl])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let key = run(&["apikey", "create", "--role", "service", "--name", "shop"]);
    let (server, base) = serve(d, None, &[]);
    // Writes answered 201, with commands opening the same folder in between.
    for n in 0..6 {
        assert_eq!(create(&base, &format!("p{n}@example.com"), &key), 201);
        run(&[
            "apikey",
            "create",
            "--role",
            "auditor",
            "--name",
            &format!("a{n}"),
        ]);
        run(&["request", "list"]);
    }
    drop(server);
    // Every one of them is there afterwards.
    for n in 0..6 {
        let found = steward()
            .current_dir(d)
            .args([
                "subject",
                "find",
                "--email",
                &format!("p{n}@example.com"),
                "-d",
                decl,
            ])
            .output()
            .unwrap();
        assert_eq!(
            code(&found),
            0,
            "p{n} was answered 201 and then lost: {}",
            stderr(&found)
        );
    }
}

/// Two servers that have each just accepted a key (and keep it in memory, so that a request
/// costs no query) refuse it as soon as `steward apikey revoke`, a third process, has revoked
/// it: the store tells every process (a file's length in the SQLite folder; `NOTIFY` on
/// PostgreSQL, heard within milliseconds).
fn a_revoked_key_is_refused_at_once_by_every_server(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let decl = example("004-mailpro.toml");
    let decl = decl.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = steward();
        cmd.current_dir(d).args(args).args(["-d", decl]);
        if let Some(url) = database {
            cmd.env("STEWARD_DATABASE_URL", url);
        }
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let key = run(&["apikey", "create", "--role", "service", "--name", "shop"]);
    let (_a, a) = serve(d, database, &[]);
    let (_b, b) = serve(d, database, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let permit = |base: &str| {
        runtime.block_on(async {
            let response = crate::client()
                .get(format!(
                    "{base}/v1/permits?subject=00000000-0000-7000-8000-000000000000&purpose=account"
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["error"].as_str().map(str::to_owned))
        })
    };
    // Accepted by both, several times (kept in memory after the first).
    for _ in 0..3 {
        for base in [&a, &b] {
            assert_eq!(permit(base).0, 200, "{base}");
        }
    }
    run(&["apikey", "revoke", &key[..12]]);
    for base in [&a, &b] {
        // PostgreSQL's notice travels on its own connection: allow it 200 ms.
        let mut answer = permit(base);
        for _ in 0..20 {
            if answer.0 == 401 || database.is_none() {
                break;
            }
            runtime.block_on(tokio::time::sleep(std::time::Duration::from_millis(10)));
            answer = permit(base);
        }
        assert_eq!(
            answer,
            (401, Some("revoked-key".to_owned())),
            "{base} still accepted the revoked key"
        );
    }
}

#[test]
fn a_key_revoked_by_a_command_is_refused_at_once_by_servers_on_one_sqlite_folder() {
    a_revoked_key_is_refused_at_once_by_every_server(None);
}

#[test]
fn a_key_revoked_by_a_command_is_refused_at_once_by_servers_on_one_postgresql() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    a_revoked_key_is_refused_at_once_by_every_server(Some(&db.url));
}
