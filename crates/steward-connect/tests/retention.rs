//! Retention over the operator's own databases: seed 003's periods (security data 1 year after
//! collection, customer records 2 years after the contract ends, financial records kept under
//! a legal hold for 10 years) swept from a shop's tables, on SQLite and — with
//! `STEWARD_TEST_POSTGRES` / `STEWARD_TEST_MYSQL` set, as CI sets them — on PostgreSQL and
//! MariaDB, each in a database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use sqlx::Connection as _;
use steward_connect::manifest::Manifest;
use steward_connect::{Connector, check, retention};
use steward_core::retention::DueCount;
use steward_policy::Declaration;
use time::macros::datetime;

/// A database for one test, dropped when the guard goes.
struct Database {
    url: String,
    drop_with: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some((admin, statement)) = self.drop_with.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

fn suffix() -> u32 {
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    u32::from_le_bytes(b)
}

/// SQLite always; PostgreSQL and MariaDB when their variables are set (CI fails without).
async fn databases() -> Vec<Database> {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![Database {
        url: format!("sqlite:{}?mode=rwc", dir.path().join("shop.db").display()),
        drop_with: None,
        _dir: Some(dir),
    }];
    for (var, quote) in [("STEWARD_TEST_POSTGRES", '"'), ("STEWARD_TEST_MYSQL", '`')] {
        let Ok(admin) = std::env::var(var) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI sets {var}: the dataset retention tests must run there"
            );
            eprintln!("skipped on {var}'s database: set it to run there too");
            continue;
        };
        let name = format!("steward_retention_{}_{}", std::process::id(), suffix());
        let mut c = sqlx::AnyConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {quote}{name}{quote}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        out.push(Database {
            url: format!("{base}/{name}"),
            drop_with: Some((
                admin,
                format!("DROP DATABASE IF EXISTS {quote}{name}{quote}"),
            )),
            _dir: None,
        });
    }
    out
}

/// The shop: customers (dated by the end of their contract), their logins and page visits
/// (security data, dated by collection), and invoices (financial records, held).
async fn shop(url: &str) {
    let ts = if url.starts_with("mysql") {
        "DATETIME"
    } else if url.starts_with("postgres") {
        "TIMESTAMP"
    } else {
        "TEXT"
    };
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    for statement in [
        format!(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL, name VARCHAR(200), contract_ended {ts} NULL)"
        ),
        "CREATE INDEX customer_email ON customer (email)".to_owned(),
        format!(
            "CREATE TABLE login (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, ip VARCHAR(64), at {ts} NOT NULL)"
        ),
        "CREATE INDEX login_at ON login (at)".to_owned(),
        "CREATE INDEX login_customer ON login (customer_id)".to_owned(),
        format!(
            "CREATE TABLE visit (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, ip VARCHAR(64) NULL, page VARCHAR(200), at {ts} NOT NULL)"
        ),
        format!(
            "CREATE TABLE invoice (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total INTEGER, issued {ts} NOT NULL)"
        ),
        "INSERT INTO customer VALUES (1, 'ana@example.com', 'Ana', '2024-05-01 00:00:00'), (2, 'ben@example.com', 'Ben', NULL), (3, 'cy@example.com', 'Cy', '2024-06-02 00:00:00')".to_owned(),
        // As of 2026-06-01: 1 year back is 2025-06-01.
        "INSERT INTO login VALUES (1, 2, '10.0.0.1', '2025-05-31 23:59:59'), (2, 2, '10.0.0.2', '2025-06-01 00:00:01'), (3, 2, '10.0.0.3', '2024-01-01 00:00:00'), (4, 1, '10.0.0.4', '2026-05-01 00:00:00')".to_owned(),
        "INSERT INTO visit VALUES (1, 2, '10.0.1.1', '/a', '2025-01-01 00:00:00'), (2, 2, '10.0.1.2', '/b', '2026-01-01 00:00:00')".to_owned(),
        // 10 years back is 2016-06-01.
        "INSERT INTO invoice VALUES (1, 2, 100, '2016-05-31 00:00:00'), (2, 2, 200, '2016-06-02 00:00:00'), (3, 1, 300, '2025-01-01 00:00:00')".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

fn manifest(url_file: &std::path::Path) -> Manifest {
    Manifest::parse(&format!(
        r#"
[dataset]
name = "shop"
url_file = "{}"

[[tables]]
name = "customer"
purpose = "customer-records"
primary_key = ["id"]
erase = "delete"
retention = {{ column = "contract_ended", event = "contract end" }}
fields = [
  {{ name = "email", category = "user.contact.email", identity = "email" }},
  {{ name = "name", category = "user.name" }},
]
owns = [
  {{ column = "id", table = "login", to = "customer_id" }},
  {{ column = "id", table = "visit", to = "customer_id" }},
  {{ column = "id", table = "invoice", to = "customer_id" }},
]

[[tables]]
name = "login"
purpose = "security"
primary_key = ["id"]
erase = "delete"
retention = {{ column = "at" }}
fields = [ {{ name = "ip", category = "user.device.ip_address" }} ]

[[tables]]
name = "visit"
purpose = "security"
primary_key = ["id"]
retention = {{ column = "at" }}
fields = [ {{ name = "ip", category = "user.device.ip_address" }} ]
context = ["page"]

[[tables]]
name = "invoice"
purpose = "financial-records"
primary_key = ["id"]
erase = "keep"
hold = "financial-records"
retention = {{ column = "issued" }}
fields = [ {{ name = "total", category = "user.financial" }} ]
"#,
        url_file.display()
    ))
    .unwrap()
}

fn allcot() -> Declaration {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/003-allcot.toml");
    let source = steward_policy::load(&path).unwrap();
    steward_policy::check(&source).unwrap().declaration.unwrap()
}

async fn ids(url: &str, table: &str) -> Vec<i64> {
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {table} ORDER BY id"
    )))
    .fetch_all(&mut c)
    .await
    .unwrap()
}

async fn tallied(
    connector: &Connector,
    declaration: &Declaration,
    key: Option<&[u8; 32]>,
) -> BTreeMap<String, DueCount> {
    use steward_core::retention::SweptSource as _;
    let mut out: BTreeMap<String, DueCount> = BTreeMap::new();
    let mut cursor = steward_core::retention::Cursor::default();
    while let Some((rule, c)) = connector
        .sweep_step(
            declaration,
            datetime!(2026-06-01 00:00 UTC),
            key,
            &mut cursor,
        )
        .await
        .unwrap()
    {
        let e = out.entry(rule).or_default();
        *e = e.merge(c);
    }
    out
}

#[tokio::test]
async fn rows_past_their_declared_period_are_swept_and_not_a_second_before() {
    let declaration = allcot();
    for db in databases().await {
        shop(&db.url).await;
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, &db.url).unwrap();
        let m = manifest(&url_file);
        assert!(
            !check::has_errors(&check::against_declaration(&m, &declaration)),
            "{:?}",
            check::against_declaration(&m, &declaration)
        );
        let connector = Connector::open(m.clone()).await.unwrap();
        let rules = retention::rules(&m, &declaration);
        assert!(rules.iter().all(|r| r.due.is_some()), "{rules:#?}");
        let invoice = rules
            .iter()
            .find(|r| r.rule.id == "dataset:shop/invoice")
            .unwrap();
        assert!(invoice.due.as_ref().unwrap().delete);
        assert_eq!(invoice.rule.keep, "10 years after collection");

        // The plan counts, and changes nothing.
        let plan = tallied(&connector, &declaration, None).await;
        let count = |t: &BTreeMap<String, DueCount>, rule: &str| {
            t.get(&format!("dataset:shop/{rule}"))
                .map_or(0, |c| c.count)
        };
        assert_eq!(count(&plan, "login"), 2, "{} {plan:?}", db.url);
        assert_eq!(count(&plan, "customer"), 1);
        assert_eq!(count(&plan, "invoice"), 1);
        assert_eq!(count(&plan, "visit"), 1);
        assert_eq!(
            plan["dataset:shop/login"].earliest,
            Some(datetime!(2024-01-01 00:00 UTC))
        );
        assert_eq!(ids(&db.url, "login").await, [1, 2, 3, 4]);

        let key = [7u8; 32];
        let swept = tallied(&connector, &declaration, Some(&key)).await;
        // A second past a year goes; a second short of it stays.
        assert_eq!(ids(&db.url, "login").await, [2], "{} {swept:?}", db.url);
        // Ana's contract ended over 2 years ago: her row goes with her login; Cy's ended a
        // day short of 2 years, Ben's runs on.
        assert_eq!(ids(&db.url, "customer").await, [2, 3]);
        // Her recent invoice is held; the one issued over 10 years ago went, the one a day
        // short of it stays.
        assert_eq!(ids(&db.url, "invoice").await, [2, 3]);
        // The old visit keeps its page but not the address.
        let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let ips: Vec<Option<String>> = sqlx::query_scalar("SELECT ip FROM visit ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert_eq!(ips, [None, Some("10.0.1.2".to_owned())]);
        assert_eq!(count(&swept, "customer"), 2, "Ana and her login: {swept:?}");

        // Idempotent: nothing is due twice.
        assert!(
            tallied(&connector, &declaration, None)
                .await
                .values()
                .all(|c| c.count == 0)
        );
        assert!(
            tallied(&connector, &declaration, Some(&key))
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_period_no_column_can_date_is_a_check_warning() {
    let declaration = allcot();
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest(&dir.path().join("url"));
    m.tables
        .iter_mut()
        .find(|t| t.name == "login")
        .unwrap()
        .retention = None;
    let findings = check::against_declaration(&m, &declaration);
    let warning = findings
        .iter()
        .find(|f| f.message.contains("`login`"))
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(!warning.error);
    assert!(
        warning.message.contains("1 year after collection"),
        "{warning:?}"
    );
    assert!(warning.message.contains("retention = {"), "{warning:?}");
    // The rule says it is not swept.
    let rule = retention::rules(&m, &declaration)
        .into_iter()
        .find(|r| r.rule.id == "dataset:shop/login")
        .unwrap();
    assert!(rule.due.is_none() && !rule.rule.swept);
    // A column dating the wrong event is a warning too, never a sweep.
    m.tables
        .iter_mut()
        .find(|t| t.name == "login")
        .unwrap()
        .retention = Some(steward_connect::manifest::TableRetention {
        column: "at".to_owned(),
        event: "account closure".to_owned(),
    });
    assert!(
        retention::rules(&m, &declaration)
            .iter()
            .any(|r| r.rule.id == "dataset:shop/login" && r.due.is_none() && r.warning.is_some())
    );
    // An event Steward does not know is an error naming the ones it does.
    let bad = Manifest::parse(
        "[dataset]\nname = \"x\"\nurl_env = \"X\"\n[[tables]]\nname = \"t\"\npurpose = \"security\"\nprimary_key = [\"id\"]\nretention = { column = \"at\", event = \"birthday\" }\nfields = [ { name = \"e\", category = \"user.contact.email\", identity = \"email\" } ]\n",
    );
    let e = bad.unwrap_err().to_string();
    assert!(e.contains("birthday") && e.contains("contract end"), "{e}");
}

/// A one-table dataset for security data ("1 year after collection"), dated by `at`.
fn events_manifest(url_file: &std::path::Path) -> Manifest {
    Manifest::parse(&format!(
        r#"
[dataset]
name = "events"
url_file = "{}"

[[tables]]
name = "event"
purpose = "security"
primary_key = ["id"]
erase = "delete"
retention = {{ column = "at" }}
fields = [ {{ name = "email", category = "user.contact.email", identity = "email" }} ]
"#,
        url_file.display()
    ))
    .unwrap()
}

#[tokio::test]
async fn dates_are_compared_as_dates_never_as_text() {
    let declaration = allcot();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("events.db").display());
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, &url).unwrap();
    let day = |d: time::OffsetDateTime| d.unix_timestamp();
    {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        // SQLite keeps what it is given, whatever the declared type: numbers and text alike.
        for statement in [
            "CREATE TABLE event (id INTEGER PRIMARY KEY, email TEXT, at DATETIME)".to_owned(),
            format!(
                "INSERT INTO event VALUES (1, 'a@example.com', {}), (2, 'a@example.com', {})",
                day(datetime!(2026-05-31 00:00 UTC)),
                day(datetime!(2025-05-01 00:00 UTC))
            ),
            "INSERT INTO event VALUES (3, 'a@example.com', '2025-06-01 01:00:00+05:00'), (4, 'a@example.com', '2025-05-31 22:00:00-05:00'), (5, 'a@example.com', '2025-06-01'), (6, 'a@example.com', '12/01/2026'), (7, 'a@example.com', 'not a date'), (8, 'a@example.com', '2025-05-30'), (9, 'a@example.com', '2025-05-31T23:59:59.5Z')".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let connector = Connector::open(events_manifest(&url_file)).await.unwrap();
    let plan = tallied(&connector, &declaration, None).await;
    assert_eq!(plan["dataset:events/event"].count, 4, "{plan:?}");
    tallied(&connector, &declaration, Some(&[1u8; 32])).await;
    // Gone: seconds a year and a month old, a time 4 hours before the cutoff given with its
    // offset, a day entirely before it, a fraction of a second before it. Kept: a day old, a
    // time after the cutoff that sorts before it as text, the cutoff's own day, a date in
    // another format, no date at all.
    assert_eq!(ids(&url, "event").await, [1, 4, 5, 6, 7]);
}

#[tokio::test]
async fn a_text_column_cannot_date_rows_where_the_database_would_compare_text() {
    for db in databases().await {
        if db.url.starts_with("sqlite") {
            continue;
        }
        let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        sqlx::query(
            "CREATE TABLE event (id INTEGER PRIMARY KEY, email VARCHAR(200), at VARCHAR(40))",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, &db.url).unwrap();
        let refused = Connector::open(events_manifest(&url_file))
            .await
            .unwrap_err();
        assert!(
            refused.contains("retention column `at`")
                && refused.contains("date, timestamp or integer"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_breach_finds_everyone_a_dataset_holds_the_categories_of() {
    use steward_core::requests::DataSource as _;
    for db in databases().await {
        shop(&db.url).await;
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, &db.url).unwrap();
        let connector = Connector::open(manifest(&url_file)).await.unwrap();
        let mut all: Vec<(String, String)> = ["ana", "ben", "cy"]
            .iter()
            .map(|n| ("email".to_owned(), format!("{n}@example.com")))
            .collect();
        all.sort();
        // The addresses: the customer table holds them.
        let emails = connector
            .people(&["user.contact.email".to_owned()], 100)
            .await
            .unwrap();
        assert_eq!(
            (emails.identities.clone(), emails.rows),
            (all.clone(), 3),
            "{}",
            db.url
        );
        // IP addresses: in login and visit, which customer owns; the people are its.
        let ips = connector
            .people(&["user.device".to_owned()], 100)
            .await
            .unwrap();
        assert_eq!((ips.identities, ips.rows), (all, 6), "{}", db.url);
        // A category nobody holds there: nobody, no rows.
        let none = connector
            .people(&["user.biometric".to_owned()], 100)
            .await
            .unwrap();
        assert_eq!((none.identities.len(), none.rows), (0, 0));
    }
}
