//! The audit trail from the command line: `steward audit verify` finds a row modified, deleted,
//! inserted or reordered directly in the database, on SQLite and on PostgreSQL, and names it;
//! `steward audit export` filters; staff accounts and scoped keys from the CLI.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{code, run, stderr, stdout, steward};

/// Where the vault lives for one test.
enum Backend {
    Sqlite,
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Backend {
    fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("STEWARD_TEST_POSTGRES") else {
            steward_core::conformance::skipped(
                "PostgreSQL",
                "set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres",
            );
            return None;
        };
        let name = format!(
            "steward_audit_{}_{}",
            std::process::id(),
            std::time::SystemTime::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.subsec_nanos())
        );
        let me = Self::Postgres {
            url: format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
            admin,
            name,
        };
        me.psql_admin(&format!("CREATE DATABASE {}", me.name()));
        Some(me)
    }

    fn name(&self) -> &str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { name, .. } => name,
        }
    }

    fn psql_admin(&self, sql: &str) {
        if let Self::Postgres { admin, .. } = self {
            let ok = Command::new("psql")
                .args([admin.as_str(), "-qtAc", sql])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success(), "{sql}");
        }
    }

    fn steward(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = steward();
        cmd.current_dir(dir).args(args);
        if let Self::Postgres { url, .. } = self {
            cmd.env("STEWARD_DATABASE_URL", url);
        }
        cmd.output().unwrap()
    }

    /// Runs statements straight against the audit table, as someone with database access
    /// and no master key would.
    fn tamper(&self, dir: &Path, statements: &[&str]) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            match self {
                Self::Sqlite => {
                    let url = format!("sqlite://{}", dir.join("steward-data/steward.db").display());
                    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                    for s in statements {
                        let sql = s.replace("{t}", "audit_entries");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&pool)
                            .await
                            .unwrap();
                    }
                    pool.close().await;
                }
                Self::Postgres { url, .. } => {
                    let pool = sqlx::PgPool::connect(url).await.unwrap();
                    for s in statements {
                        let sql = s.replace("{t}", "steward.audit_entries");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&pool)
                            .await
                            .unwrap();
                    }
                    pool.close().await;
                }
            }
        });
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Self::Postgres { .. } = self {
            self.psql_admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name()
            ));
        }
    }
}

/// A vault with a dozen audit entries.
fn populated(backend: &Backend, dir: &Path) {
    assert_eq!(code(&run(dir, &["init"])), 0);
    std::fs::write(
        dir.join("people.csv"),
        "email\nann@example.com\nben@example.com\ncat@example.com\n",
    )
    .unwrap();
    let import = backend.steward(dir, &["import", "--purpose", "accounts", "people.csv"]);
    assert_eq!(code(&import), 0, "{}", stderr(&import));
    for who in ["ann", "ben", "cat", "ann", "ben", "cat", "dan"] {
        let email = format!("{who}@example.com");
        let found = backend.steward(dir, &["subject", "find", "--email", &email]);
        assert!(code(&found) <= 1, "{}", stderr(&found));
    }
    let verified = backend.steward(dir, &["audit", "verify"]);
    assert_eq!(
        code(&verified),
        0,
        "an untouched trail verifies: {}",
        stderr(&verified)
    );
    assert!(
        stderr(&verified).contains("intact: 8 entries"),
        "{}",
        stderr(&verified)
    );
}

const TAMPERINGS: [(&str, &[&str], &str); 4] = [
    (
        "modify",
        &["UPDATE {t} SET purpose = 'newsletter' WHERE seq = 4"],
        "entry 4 was modified",
    ),
    (
        "delete",
        &["DELETE FROM {t} WHERE seq = 4"],
        "entries 4 to 4 were deleted",
    ),
    (
        "insert",
        &[
            // Make room at 4, then put a copy of a genuine row there.
            "UPDATE {t} SET seq = seq + 1000 WHERE seq >= 4",
            "UPDATE {t} SET seq = seq - 999 WHERE seq >= 1000",
            "INSERT INTO {t} SELECT 4, at, request, actor, role, action, purpose, subject, categories, outcome, code, ticket, flagged, detail, prev, hash FROM {t} WHERE seq = 3",
        ],
        "entry 4 was inserted",
    ),
    (
        "reorder",
        &[
            "UPDATE {t} SET seq = -4 WHERE seq = 4",
            "UPDATE {t} SET seq = 4 WHERE seq = 5",
            "UPDATE {t} SET seq = 5 WHERE seq = -4",
        ],
        "entries 4 and 5 were reordered",
    ),
];

fn each_tampering_is_detected(make: impl Fn() -> Option<Backend>) {
    for (what, statements, expected) in TAMPERINGS {
        let Some(backend) = make() else { return };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        populated(&backend, d);
        backend.tamper(d, statements);
        let verified = backend.steward(d, &["audit", "verify"]);
        assert_eq!(code(&verified), 1, "{what}: {}", stderr(&verified));
        assert!(
            stderr(&verified).contains(expected),
            "{what} on {}: expected `{expected}` in:\n{}",
            backend.name(),
            stderr(&verified)
        );
    }
}

#[test]
fn verify_names_each_tampered_row_on_sqlite() {
    each_tampering_is_detected(|| Some(Backend::Sqlite));
}

#[test]
fn verify_names_each_tampered_row_on_postgresql() {
    each_tampering_is_detected(Backend::postgres);
}

#[test]
fn the_audit_holds_no_plaintext_and_exports_filter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let backend = Backend::Sqlite;
    populated(&backend, d);
    let all = run(d, &["audit", "export"]);
    assert_eq!(code(&all), 0, "{}", stderr(&all));
    let lines: Vec<serde_json::Value> = stdout(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 9, "{}", stdout(&all));
    assert!(
        !stdout(&all).contains("example.com"),
        "no e-mail address in the audit"
    );
    let lookups = lines
        .iter()
        .filter(|l| l["action"] == "subject.lookup")
        .count();
    assert_eq!(lookups, 7);
    let subject = lines
        .iter()
        .find_map(|l| l["subject"].as_str())
        .unwrap()
        .to_owned();
    let mine = run(
        d,
        &["audit", "export", "--subject", &subject, "--format", "csv"],
    );
    assert_eq!(code(&mine), 0);
    let csv = stdout(&mine);
    assert!(csv.starts_with("seq,at,request,actor,role,action"), "{csv}");
    // The header, the two look-ups of that person, and this export of their trail.
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains("audit.export"), "{csv}");
    let bad = run(d, &["audit", "export", "--since", "yesterday"]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
    // The raw database file holds no address either (values are sealed, the audit is
    // pseudonymous).
    let db = std::fs::read(d.join("steward-data/steward.db")).unwrap();
    let wal = std::fs::read(d.join("steward-data/steward.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(15).any(|w| w == b"ann@example.com"),
            "no plaintext address on disk"
        );
    }
}

#[test]
fn scoped_keys_and_staff_accounts_are_made_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&run(d, &["init"])), 0);
    let support = run(
        d,
        &[
            "apikey",
            "create",
            "--role",
            "support",
            "--name",
            "helpdesk",
            "--purpose",
            "accounts",
            "--expires-in-days",
            "30",
        ],
    );
    assert_eq!(code(&support), 0, "{}", stderr(&support));
    assert!(
        stderr(&support).contains("It expires on"),
        "{}",
        stderr(&support)
    );
    let beyond = run(
        d,
        &[
            "apikey",
            "create",
            "--role",
            "service",
            "--operation",
            "export",
        ],
    );
    assert_eq!(code(&beyond), 1);
    assert!(
        stderr(&beyond).contains("the service role may never export"),
        "{}",
        stderr(&beyond)
    );
    let unknown = run(
        d,
        &["apikey", "create", "--role", "service", "--purpose", "nope"],
    );
    assert_eq!(code(&unknown), 1);
    assert!(stderr(&unknown).contains("`nope` is not a declared purpose"));
    let list = run(d, &["apikey", "list"]);
    assert!(stdout(&list).contains("support") && stdout(&list).contains("accounts"));
    assert!(
        !stdout(&list).contains(stdout(&support).trim()),
        "never the key itself"
    );

    let mut weak = steward()
        .current_dir(d)
        .args(["admin", "create", "alice", "--role", "admin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = weak.stdin.take().unwrap();
        writeln!(stdin, "short").unwrap();
    }
    let weak = weak.wait_with_output().unwrap();
    assert_eq!(code(&weak), 1);
    assert!(
        stderr(&weak).contains("at least 12 characters"),
        "{}",
        stderr(&weak)
    );

    let created = steward()
        .current_dir(d)
        .env("STEWARD_ADMIN_PASSWORD", "correct horse battery staple")
        .args(["admin", "create", "alice", "--role", "admin", "--totp"])
        .output()
        .unwrap();
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    assert!(
        stdout(&created).starts_with("otpauth://totp/"),
        "{}",
        stdout(&created)
    );
    let again = steward()
        .current_dir(d)
        .env("STEWARD_ADMIN_PASSWORD", "correct horse battery staple")
        .args(["admin", "create", "alice", "--role", "dpo"])
        .output()
        .unwrap();
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains("already exists"));
    let listed = run(d, &["admin", "list"]);
    assert!(stdout(&listed).contains("alice") && stdout(&listed).contains("yes"));
    assert_eq!(code(&run(d, &["admin", "disable", "alice"])), 0);
    assert!(stdout(&run(d, &["admin", "list"])).contains("disabled"));
    assert_eq!(code(&run(d, &["admin", "unlock", "nobody"])), 1);
    let exported = stdout(&run(d, &["audit", "export"]));
    for action in ["apikey.create", "staff.create", "staff.disable"] {
        assert!(exported.contains(action), "{action} is audited");
    }
    assert!(!exported.contains("horse"), "no password in the audit");
}
