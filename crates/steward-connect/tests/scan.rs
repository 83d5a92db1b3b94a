//! `steward datasets scan` on SQLite: a manifest proposed from the live schema — declared
//! foreign keys as references, keys and indexes read, categories guessed and marked for
//! review — that finds a person's rows, and says what it left out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use steward_connect::manifest::TableErase;
use steward_connect::{Source, check, find, scan};

async fn site(dir: &std::path::Path) -> String {
    let path = dir.join("site.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT NOT NULL, full_name TEXT, birthday TEXT, manager_id INTEGER REFERENCES person (id));
         CREATE UNIQUE INDEX person_email ON person (email);
         CREATE INDEX person_email_lower ON person (lower(email));
         CREATE TABLE address (id INTEGER PRIMARY KEY, street TEXT, city TEXT);
         CREATE TABLE purchase (id INTEGER PRIMARY KEY, buyer INTEGER REFERENCES person, ships_to INTEGER REFERENCES address (id), total INTEGER);
         CREATE TABLE audit_note (id INTEGER PRIMARY KEY, body TEXT);
         CREATE TABLE newsletter (mail TEXT, since TEXT);
         CREATE INDEX newsletter_mail ON newsletter (mail);
         INSERT INTO person VALUES (1, 'ana@example.com', 'Ana Example', '1990-01-01', NULL), (2, 'ben@example.com', 'Ben Example', NULL, 1);
         INSERT INTO address VALUES (1, 'Ana Street', 'Anatown'), (2, 'Ben Street', 'Bentown');
         INSERT INTO purchase VALUES (1, 1, 1, 10), (2, 1, 1, 20), (3, 2, 2, 30);
         INSERT INTO newsletter VALUES ('ana@example.com', '2024-01-01'), ('ben@example.com', '2024-01-02');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn a_scan_proposes_a_manifest_from_keys_references_and_column_names() {
    let dir = tempfile::tempdir().unwrap();
    let url = site(dir.path()).await;
    let source = Source::connect("site", &url).await.unwrap();
    assert_eq!(source.primary_keys["purchase"], ["id"]);
    assert!(source.is_indexed("person", "email"));
    assert!(!source.is_indexed("purchase", "buyer"));
    let scanned = scan::scan(
        &source,
        &scan::Options {
            name: "site".to_owned(),
            purpose: "accounts".to_owned(),
            url_env: "SITE_DATABASE_URL".to_owned(),
        },
    )
    .unwrap();
    let m = &scanned.manifest;
    let person = m.table("person").unwrap();
    let fields: Vec<(&str, &str, Option<&str>)> = person
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.category.as_str(), f.identity.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            ("birthday", "user.demographic.date_of_birth", None),
            ("email", "user.contact.email", Some("email")),
            ("full_name", "user.name", None),
        ]
    );
    // A declared foreign key (to the implied primary key) makes the person own their purchases,
    // and a purchase its address.
    assert!(
        person
            .owns
            .iter()
            .any(|o| o.table == "purchase" && o.to == "buyer")
    );
    // Her reports are other people: a table's reference to itself is not followed.
    assert!(
        !person.owns.iter().any(|o| o.table == "person"),
        "{:?}",
        person.owns
    );
    assert!(
        scanned
            .notes
            .iter()
            .any(|n| n.contains("`person.manager_id` refers to its own table")),
        "{:?}",
        scanned.notes
    );
    let purchase = m.table("purchase").unwrap();
    assert!(
        purchase
            .owns
            .iter()
            .any(|o| o.table == "address" && o.column == "ships_to")
    );
    assert_eq!(purchase.erase, TableErase::Fields);
    // No key: every column stands in, marked for review; a table nobody leads to is left out.
    assert_eq!(
        m.table("newsletter").unwrap().primary_key,
        ["mail", "since"]
    );
    assert!(
        scanned
            .text
            .contains("REVIEW: the table has no primary key")
    );
    assert!(m.table("audit_note").is_none());
    assert!(
        scanned.notes.iter().any(|n| n.contains("`audit_note`")),
        "{:?}",
        scanned.notes
    );

    // What it proposes finds Ana's rows and nobody else's.
    let found = find::find(
        m,
        &source,
        &[("email".to_owned(), "ana@example.com".to_owned())],
    )
    .await
    .unwrap();
    let count = |t: &str| found.tables.get(t).map_or(0, |r| r.rows.len());
    assert_eq!(
        (
            count("person"),
            count("purchase"),
            count("address"),
            count("newsletter")
        ),
        (1, 2, 1, 1)
    );
    assert!(!format!("{:?}", found.tables).contains("Ben"));

    // A person with more rows than the manifest's bound is refused, naming the setting.
    let mut bounded = m.clone();
    bounded.dataset.max_rows = Some(3);
    let e = find::find(
        &bounded,
        &source,
        &[("email".to_owned(), "ana@example.com".to_owned())],
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("more than 3 rows of one person")
            && e.to_string().contains("max_rows"),
        "{e}"
    );
    bounded.dataset.max_rows = Some(5);
    assert_eq!(
        find::find(
            &bounded,
            &source,
            &[("email".to_owned(), "ana@example.com".to_owned())],
        )
        .await
        .unwrap()
        .count(),
        5
    );

    // Lookups no index serves are warnings naming the fix.
    let findings = check::against_schema(m, &source);
    assert!(!check::has_errors(&findings), "{findings:?}");
    let all: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        all.iter()
            .any(|f| f.contains("CREATE INDEX purchase_buyer_idx ON purchase (buyer)")),
        "{all:?}"
    );
    // An address is matched without regard to case: the index on lower(email) serves it,
    // the plain one on newsletter's `mail` does not.
    assert!(
        all.iter()
            .any(|f| f.contains("CREATE INDEX newsletter_mail_lower ON newsletter (lower(mail))")),
        "{all:?}"
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(source.is_indexed_ignoring_case("person", "email"));
}

#[tokio::test]
async fn a_schema_with_no_identity_proposes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql("CREATE TABLE product (id INTEGER PRIMARY KEY, title TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let source = Source::connect("plain", &format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let e = scan::scan(
        &source,
        &scan::Options {
            name: "plain".to_owned(),
            purpose: "accounts".to_owned(),
            url_env: "PLAIN_DATABASE_URL".to_owned(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("write it by hand"), "{e}");
}

#[tokio::test]
async fn a_dataset_not_reachable_at_start_is_connected_when_a_request_needs_it() {
    use steward_core::requests::DataSource as _;
    let dir = tempfile::tempdir().unwrap();
    let url = site(dir.path()).await;
    let url_file = dir.path().join("site-url");
    let manifest = steward_connect::Manifest::parse(&format!(
        r#"
[dataset]
name = "site"
url_file = "{}"

[[tables]]
name = "person"
purpose = "accounts"
primary_key = ["id"]
fields = [{{ name = "email", category = "user.contact.email", identity = "email", erase = "hash" }}]
"#,
        url_file.display()
    ))
    .unwrap();
    let deferred = steward_connect::Deferred::new(manifest);
    let ana = [("email".to_owned(), "ana@example.com".to_owned())];
    // No URL yet: each request fails, naming where the URL should be, never the data.
    let e = deferred.collect(None, &ana).await.unwrap_err();
    assert!(e.contains("site-url"), "{e}");
    // Given: the next request connects, and finds her.
    std::fs::write(&url_file, &url).unwrap();
    let groups = deferred.collect(None, &ana).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.rows.len()).sum::<usize>(), 1);
}

async fn sqlite(dir: &std::path::Path, sql: &str) -> Source {
    let path = dir.join("people.db");
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Source::connect("people", &format!("sqlite:{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_table_that_refers_to_people_in_two_tables_is_owned_by_neither_in_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(
        dir.path(),
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT);
         CREATE TABLE employee (id INTEGER PRIMARY KEY, email TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer, rep_id INTEGER REFERENCES employee);",
    )
    .await;
    let scanned = scan::scan(
        &source,
        &scan::Options {
            name: "people".to_owned(),
            purpose: "accounts".to_owned(),
            url_env: "PEOPLE_DATABASE_URL".to_owned(),
        },
    )
    .unwrap();
    for t in &scanned.manifest.tables {
        assert!(!t.owns.iter().any(|o| o.table == "orders"), "{t:?}");
    }
    assert!(
        scanned
            .notes
            .iter()
            .any(|n| n.starts_with("REVIEW: `orders.customer_id`")),
        "{:?}",
        scanned.notes
    );
}

#[tokio::test]
async fn erasure_keeps_what_names_or_belongs_to_someone_else_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(
        dir.path(),
        "CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT, name TEXT, manager_id INTEGER, home TEXT);
         CREATE TABLE address (id INTEGER PRIMARY KEY, code TEXT UNIQUE, street TEXT);
         CREATE TABLE address_note (id INTEGER PRIMARY KEY, address_id INTEGER, note TEXT);
         CREATE TABLE ticket (id INTEGER PRIMARY KEY, email TEXT, cc TEXT, body TEXT);
         INSERT INTO person VALUES (1, 'boss@example.com', 'Boss', NULL, 'H1'), (2, '', 'Worker', 1, 'H1'), (3, 'ana@example.com', 'Ana', 1, 'H2');
         INSERT INTO address VALUES (1, 'H1', 'Shared Street'), (2, 'H2', 'Ana Street');
         INSERT INTO address_note VALUES (1, 1, 'ring twice'), (2, 2, 'leave at door');
         INSERT INTO ticket VALUES (1, 'boss@example.com', 'ana@example.com', 'about Ana'), (2, 'boss@example.com', NULL, 'mine');",
    )
    .await;
    let manifest = steward_connect::Manifest::parse(
        r#"
[dataset]
name = "people"
url_env = "UNUSED"

[[tables]]
name = "person"
purpose = "accounts"
primary_key = ["id"]
fields = [
  { name = "email", category = "user.contact.email", identity = "email", erase = "replace:" },
  { name = "name", category = "user.name" },
]
owns = [
  { column = "id", table = "person", to = "manager_id" },
  { column = "home", table = "address", to = "code" },
]

[[tables]]
name = "address"
purpose = "accounts"
primary_key = ["id"]
fields = [{ name = "street", category = "user.contact.address" }]
owns = [{ column = "id", table = "address_note", to = "address_id" }]

[[tables]]
name = "address_note"
purpose = "accounts"
primary_key = ["id"]
fields = [{ name = "note", category = "user.contact.address" }]

[[tables]]
name = "ticket"
purpose = "accounts"
primary_key = ["id"]
fields = [
  { name = "email", category = "user.contact.email", identity = "email", erase = "replace:" },
  { name = "cc", category = "user.contact.email", identity = "email", erase = "replace:" },
  { name = "body", category = "user.content.private" },
]
"#,
    )
    .unwrap();
    let boss = [("email".to_owned(), "boss@example.com".to_owned())];
    let found = find::find(&manifest, &source, &boss).await.unwrap();
    // The reports are other people, an empty address included: not followed.
    assert_eq!(found.tables["person"].rows.len(), 1, "{found:?}");
    let done = steward_connect::erase::erase(&manifest, &source, &found, &[1u8; 32], true)
        .await
        .unwrap();
    let outcome = |t: &str| done.tables.iter().find(|o| o.table == t).unwrap().clone();
    // The address the worker shares, and its note, stay; the ticket that names Ana stays.
    let address = outcome("address");
    assert_eq!(address.changed, 0, "{address:?}");
    assert!(
        address
            .held
            .iter()
            .any(|(_, why)| why.contains("`person` lead there too")),
        "{address:?}"
    );
    let note = outcome("address_note");
    assert_eq!(note.changed, 0, "{note:?}");
    assert!(
        note.held
            .iter()
            .any(|(_, why)| why.contains("a row of `address` that is kept")),
        "{note:?}"
    );
    let ticket = outcome("ticket");
    assert_eq!(
        ticket.changed, 1,
        "only the ticket that is his alone: {ticket:?}"
    );
    assert!(
        ticket
            .held
            .iter()
            .any(|(_, why)| why == "it names someone else too"),
        "{ticket:?}"
    );
}
