//! Fides's own example shop on the PostgreSQL running here (`tests/data/fides-example-schema.sql`),
//! described by Fides's own dataset file read unchanged (`examples/fides-example-dataset.yml`):
//! access finds exactly the person's rows, erasure changes exactly those — the addresses and
//! login times Fides's default erasure skips included —, and a manifest proposed from the live
//! schema finds the same rows.
//!
//! Needs `STEWARD_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); without it
//! the tests say they skipped (CI sets it, and fails rather than skip).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use sqlx::postgres::PgPool;
use sqlx::{Connection as _, Row as _};
use steward_connect::{Source, check, erase, fides, find, scan};

/// A fresh database with the shop's schema and rows, dropped when the guard goes.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Ana (customer 1) and Ben (customer 2) share nothing but the products they bought and the
/// employee who answered them; Eve is that employee.
const ROWS: &str = "
INSERT INTO address (id, house, street, city, state, zip) VALUES
  (1, 1, 'Ana Street', 'Anatown', 'NY', '10001'), (2, 2, 'Ben Street', 'Bentown', 'CA', '90001'),
  (3, 3, 'Eve Street', 'Evetown', 'TX', '70001'), (4, 4, 'Ana Billing', 'Anatown', 'NY', '10002'),
  (5, 5, 'Ana Office', 'Anacity', 'NY', '10003');
INSERT INTO customer (id, email, name, created, address_id) VALUES
  (1, 'ana@example.com', 'Ana Example', '2024-01-01 10:00', 1),
  (2, 'ben@example.com', 'Ben Example', '2024-01-02 10:00', 2);
INSERT INTO employee (id, email, name, address_id) VALUES (1, 'eve@example.com', 'Eve Staff', 3);
INSERT INTO product (id, name, price) VALUES (1, 'Cookie 1', 1), (2, 'Cookie 2', 2), (3, 'Cookie 3', 3);
INSERT INTO payment_card (id, name, ccn, code, preferred, customer_id, billing_address_id) VALUES
  ('pm_1', 'Ana card', 4111111111111111, 123, true, 1, 4),
  ('pm_2', 'Ben card', 4222222222222222, 456, true, 2, 2);
INSERT INTO orders (id, customer_id, shipping_address_id, payment_card_id) VALUES
  ('o1', 1, 5, 'pm_1'), ('o2', 1, 1, 'pm_1'), ('o3', 2, 2, 'pm_2');
INSERT INTO order_item (order_id, item_no, product_id, quantity) VALUES
  ('o1', 1, 1, 2), ('o1', 2, 2, 1), ('o2', 1, 2, 5), ('o3', 1, 3, 1);
INSERT INTO login (id, customer_id, time) VALUES
  (1, 1, '2024-02-01 08:00'), (2, 1, '2024-02-02 08:00'), (3, 2, '2024-02-03 08:00');
INSERT INTO visit (email, last_visit) VALUES
  ('ana@example.com', '2024-03-01 09:00'), ('ana@example.com', '2024-03-02 09:00'),
  ('ben@example.com', '2024-03-01 09:00');
INSERT INTO service_request (id, email, alt_email, opened, closed, employee_id) VALUES
  ('sr1', 'ana@example.com', 'ana.alt@example.com', '2024-04-01', '2024-04-03', 1),
  ('sr2', 'ben@example.com', NULL, '2024-04-02', NULL, 1);
INSERT INTO report (id, email, name, year, month, total_visits) VALUES
  (1, 'ana@example.com', 'Monthly report 1', 2024, 3, 2), (2, 'ben@example.com', 'Monthly report 2', 2024, 3, 1);
";

/// What `steward datasets check` asks for on Fides's schema: e-mail addresses are matched
/// without regard to case, which its plain indexes cannot serve.
const LOWER_INDEXES: &str = "
CREATE INDEX customer_email_lower ON customer (lower(email));
CREATE INDEX employee_email_lower ON employee (lower(email));
CREATE INDEX report_email_lower ON report (lower(email));
CREATE INDEX service_request_email_lower ON service_request (lower(email));
CREATE INDEX service_request_alt_email_lower ON service_request (lower(alt_email));
CREATE INDEX visit_email_lower ON visit (lower(email));
";

async fn shop() -> Option<Database> {
    let Ok(admin) = std::env::var("STEWARD_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI sets STEWARD_TEST_POSTGRES: the Fides shop tests must run there"
        );
        eprintln!(
            "skipped: set STEWARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres to run the Fides shop tests"
        );
        return None;
    };
    let mut suffix = [0u8; 4];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut suffix,
    )
    .unwrap();
    let name = format!(
        "steward_fides_{}_{}",
        std::process::id(),
        u32::from_le_bytes(suffix)
    );
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await
        .unwrap();
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("STEWARD_TEST_POSTGRES names a database: postgres://USER@HOST:PORT/DB"),
    };
    let pool = PgPool::connect(&url).await.unwrap();
    let schema = include_str!("data/fides-example-schema.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{schema}\n{ROWS}\n{LOWER_INDEXES}"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    Some(Database { admin, name, url })
}

fn fides_options() -> fides::Options {
    fides::Options {
        purpose: "orders".to_owned(),
        url_env: Some("SHOP_DATABASE_URL".to_owned()),
        dataset: None,
    }
}

/// Fides's own dataset file, imported with the live schema at hand.
fn imported(source: &Source) -> steward_connect::Manifest {
    fides::import(
        include_str!("../../../examples/fides-example-dataset.yml"),
        &fides_options(),
        Some(source),
    )
    .unwrap()
    .manifest
}

fn ana() -> Vec<(String, String)> {
    vec![("email".to_owned(), "ana@example.com".to_owned())]
}

/// Every row of every table, as JSON text.
async fn every_row(url: &str) -> BTreeSet<String> {
    let pool = PgPool::connect(url).await.unwrap();
    let mut out = BTreeSet::new();
    for table in [
        "address",
        "customer",
        "employee",
        "product",
        "payment_card",
        "orders",
        "order_item",
        "login",
        "visit",
        "service_request",
        "report",
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT '{table} ' || CAST(row_to_json(t) AS TEXT) FROM {table} AS t"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        out.extend(rows.iter().map(|r| r.get::<String, _>(0)));
    }
    pool.close().await;
    out
}

fn counts(found: &find::Found) -> BTreeMap<String, usize> {
    found
        .tables
        .iter()
        .map(|(t, rows)| (t.clone(), rows.rows.len()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn fides_own_dataset_file_finds_exactly_the_customers_rows() {
    let Some(db) = shop().await else { return };
    let source = Source::connect("shop", &db.url).await.unwrap();
    let yaml = include_str!("../../../examples/fides-example-dataset.yml");
    let imported = fides::import(yaml, &fides_options(), Some(&source)).unwrap();
    let m = &imported.manifest;
    // Keys the file leaves out come from the database.
    assert_eq!(
        m.table("order_item").unwrap().primary_key,
        ["order_id", "item_no"]
    );
    assert_eq!(
        m.table("visit").unwrap().primary_key,
        ["email", "last_visit"]
    );
    let findings = check::against_schema(m, &source);
    assert!(findings.is_empty(), "{findings:?}");

    let found = find::find(m, &source, &ana()).await.unwrap();
    let expected: BTreeMap<String, usize> = [
        ("customer", 1),
        ("orders", 2),
        ("order_item", 3),
        ("product", 2),
        ("payment_card", 1),
        ("login", 2),
        ("address", 3),
        ("service_request", 1),
        ("report", 1),
        ("visit", 2),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(counts(&found), expected);
    let text = format!("{:?}", found.tables);
    for other in ["ben", "Ben", "eve", "Eve", "Cookie 3"] {
        assert!(!text.contains(other), "`{other}` is not Ana's: {text}");
    }
    // Her second address finds only the request she gave it in.
    let alt = find::find(
        m,
        &source,
        &[("email".to_owned(), "ana.alt@example.com".to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(
        counts(&alt),
        BTreeMap::from([("service_request".to_owned(), 1)])
    );
}

#[tokio::test]
async fn erasure_reaches_what_fides_skips_and_nothing_of_anyone_else() {
    let Some(db) = shop().await else { return };
    let source = Source::connect("shop", &db.url).await.unwrap();
    let m = imported(&source);
    // Known by one address, her request that carries a second one is not known to be hers
    // alone: a dry run keeps it, and says why.
    let found = find::find(&m, &source, &ana()).await.unwrap();
    let dry = erase::erase(&m, &source, &found, &[9u8; 32], true)
        .await
        .unwrap();
    let request = dry
        .tables
        .iter()
        .find(|t| t.table == "service_request")
        .unwrap();
    assert_eq!(request.changed, 0, "{request:?}");
    assert!(
        request
            .held
            .iter()
            .any(|(_, why)| why == "it names someone else too"),
        "{request:?}"
    );
    // Known by both (as the vault knows a person's identities), everything of hers goes.
    let both = [
        ("email".to_owned(), "ana@example.com".to_owned()),
        ("email".to_owned(), "ana.alt@example.com".to_owned()),
    ];
    let before = every_row(&db.url).await;
    let found = find::find(&m, &source, &both).await.unwrap();
    let done = erase::erase(&m, &source, &found, &[9u8; 32], false)
        .await
        .unwrap();
    assert!(!done.dry);
    let after = every_row(&db.url).await;
    let gone: Vec<&String> = before.difference(&after).collect();
    let new: Vec<&String> = after.difference(&before).collect();
    // Changed: her customer row, 3 addresses, 2 login times, 1 card, 2 visits, her request and
    // her report — 11 rows; her orders and their items hold nothing of her but the links.
    assert_eq!(gone.len(), 11, "{gone:#?}");
    assert_eq!(new.len(), 11, "{new:#?}");
    for row in &gone {
        for other in ["ben", "Ben", "eve@", "Eve Street", "Eve Staff"] {
            assert!(!row.contains(other), "not Ana's, yet changed: {row}");
        }
    }
    let everything = after.iter().cloned().collect::<Vec<_>>().join("\n");
    for hers in [
        "ana@example.com",
        "ana.alt@example.com",
        "Ana Example",
        "Ana Street",
        "Ana Billing",
        "Ana Office",
        "4111111111111111",
        "2024-02-01T08:00",
    ] {
        assert!(
            !everything.contains(hers),
            "`{hers}` is still there:\n{everything}"
        );
    }
    for kept in [
        "ben@example.com",
        "Ben Street",
        "eve@example.com",
        "Cookie 2",
    ] {
        assert!(everything.contains(kept), "`{kept}` went");
    }
    // Nothing of her is found again.
    let again = find::find(&m, &source, &ana()).await.unwrap();
    assert_eq!(again.count(), 0);
}

#[tokio::test]
async fn a_manifest_proposed_from_the_live_schema_finds_the_same_rows() {
    let Some(db) = shop().await else { return };
    let source = Source::connect("shop", &db.url).await.unwrap();
    let scanned = scan::scan(
        &source,
        &scan::Options {
            name: "shop".to_owned(),
            purpose: "orders".to_owned(),
            url_env: "SHOP_DATABASE_URL".to_owned(),
        },
    )
    .unwrap();
    let imported = fides::import(
        include_str!("../../../examples/fides-example-dataset.yml"),
        &fides_options(),
        Some(&source),
    )
    .unwrap();
    let by_scan = find::find(&scanned.manifest, &source, &ana())
        .await
        .unwrap();
    let by_fides = find::find(&imported.manifest, &source, &ana())
        .await
        .unwrap();
    // The same rows, but for the products: a scan never makes an order's item own the product
    // (everybody's items lead to it, and nothing in it looks like someone's); Fides's file does.
    let mut fides_counts = counts(&by_fides);
    assert_eq!(fides_counts.remove("product"), Some(2));
    assert_eq!(counts(&by_scan), fides_counts);
    assert!(scanned.text.contains("review: guessed from its name"));
    assert!(
        scanned
            .notes
            .iter()
            .any(|n| n.contains("`orders.customer_id` read as a reference to `customer.id`")),
        "{:?}",
        scanned.notes
    );
}

#[tokio::test]
async fn an_identity_no_index_serves_is_a_warning_naming_the_fix() {
    let Some(db) = shop().await else { return };
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query("DROP INDEX report_email_lower")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let source = Source::connect("shop", &db.url).await.unwrap();
    let m = imported(&source);
    let findings = check::against_schema(&m, &source);
    assert!(!check::has_errors(&findings), "{findings:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .message
            .contains("table `report`: people are looked up by `email` without regard to case")
            && findings[0]
                .message
                .contains("CREATE INDEX report_email_lower ON report (lower(email))"),
        "{findings:?}"
    );
    // A plain index does not serve it; the search still finds her, by reading the table.
    let found = find::find(&m, &source, &ana()).await.unwrap();
    assert_eq!(found.tables["report"].rows.len(), 1);
}

#[tokio::test]
async fn rows_that_name_someone_else_are_never_found_for_the_person_a_reference_leads_from() {
    let Some(db) = shop().await else { return };
    let source = Source::connect("shop", &db.url).await.unwrap();
    let m = imported(&source);
    // Fides's file has the employee own the service requests they handled: those hold the
    // customers' addresses, so Eve's search leaves them out, and says how many.
    let eve = find::find(
        &m,
        &source,
        &[("email".to_owned(), "eve@example.com".to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(counts(&eve).get("service_request"), None, "{eve:?}");
    assert_eq!(eve.withheld.get("service_request"), Some(&2));
    assert!(!format!("{eve:?}").contains("ana@example.com"));
}

#[tokio::test]
async fn a_row_another_person_shares_is_kept_and_said_and_a_row_repointed_since_is_never_erased() {
    let Some(db) = shop().await else { return };
    let pool = PgPool::connect(&db.url).await.unwrap();
    // Ben moves in with Ana: address 1 is both theirs.
    sqlx::query("UPDATE customer SET address_id = 1 WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    let source = Source::connect("shop", &db.url).await.unwrap();
    let m = imported(&source);

    // Found, then one of her logins re-pointed to Ben before the erasure: nothing is written.
    let found = find::find(&m, &source, &ana()).await.unwrap();
    let before = every_row(&db.url).await;
    sqlx::query("UPDATE login SET customer_id = 2 WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    let e = erase::erase(&m, &source, &found, &[9u8; 32], false)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("changed or went since it was read"),
        "{e}"
    );
    let mut expected = before.clone();
    expected.retain(|r| !r.starts_with("login "));
    let mut now = every_row(&db.url).await;
    now.retain(|r| !r.starts_with("login "));
    assert_eq!(now, expected, "nothing else was written");

    // Searched again, erased: the shared address stays, and the outcome says why.
    let found = find::find(&m, &source, &ana()).await.unwrap();
    let done = erase::erase(&m, &source, &found, &[9u8; 32], false)
        .await
        .unwrap();
    let address = done.tables.iter().find(|t| t.table == "address").unwrap();
    assert_eq!(address.changed, 2, "{address:?}");
    assert!(
        address
            .held
            .iter()
            .any(|(what, why)| what == "1 row(s)" && why.contains("`customer`")),
        "{address:?}"
    );
    let after = every_row(&db.url)
        .await
        .into_iter()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(after.contains("Ana Street"), "the shared address stays");
    assert!(!after.contains("Ana Billing") && !after.contains("Ana Office"));
    pool.close().await;
}
