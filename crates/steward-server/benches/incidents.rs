//! A breach over a large vault (seed 004, Mailpro): `STEWARD_BENCH_SUBJECTS` people (default
//! 1,000,000), each with an e-mail address (an identity) and a name (a field). One incident
//! over `user.contact.email` finds its people from the identities, one over `user.name` from
//! the fields (`Incidents::derive`, inside the database); then the people's notices are queued
//! by e-mail and in-app (`Incidents::notify_subjects`, one INSERT … SELECT per channel).
//!
//!   cargo bench -p steward-server --bench incidents
//!   STEWARD_BENCH_SUBJECTS=100000 cargo bench -p steward-server --bench incidents
//!   STEWARD_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p steward-server --bench incidents
//!
//! Neither step opens a sealed value, so the people are written straight into the store's
//! tables (random blobs where sealed values and blind indexes stand). Prints the times, the
//! rates and the peak memory.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_precision_loss
)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use steward_core::incidents::{Derive, Incidents, NewAssessment, NewIncident, Risk};
use steward_core::{Access, Principal};

fn main() {
    let subjects = common::env("STEWARD_BENCH_SUBJECTS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(subjects));
}

/// Peak resident memory of this process, in MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A week ago, in the store's Unix nanoseconds.
fn last_week() -> i64 {
    let t = time::OffsetDateTime::now_utc() - time::Duration::days(7);
    i64::try_from(t.unix_timestamp_nanos()).unwrap()
}

async fn run(subjects: u64) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_owned();
    let (_, vault, _) = common::vault(&dir).await;
    let at = last_week();
    let started = Instant::now();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.join("steward.db").display()))
        .await
        .unwrap();
    for statement in [
        "PRAGMA synchronous = OFF".to_owned(),
        format!(
            "INSERT INTO subjects (id, created_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {subjects}) SELECT CAST(printf('%016d', i) AS BLOB), {at} FROM n"
        ),
        format!(
            "INSERT INTO identities (subject, kind, idx, sealed, purpose) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {subjects}) SELECT CAST(printf('%016d', i) AS BLOB), 'email', randomblob(32), randomblob(64), 'account' FROM n"
        ),
        format!(
            "INSERT INTO fields (id, subject, category, purpose, source, collected_at, sealed) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {subjects}) SELECT CAST(printf('f%015d', i) AS BLOB), CAST(printf('%016d', i) AS BLOB), 'user.name', 'account', 'form', {at}, randomblob(48) FROM n"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    println!(
        "SQLite: seeded {subjects} people in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ledger = common::ledger(&vault, &dir).await;
    measure(ledger, subjects).await;
    drop(vault);

    if let Ok(admin) = std::env::var("STEWARD_BENCH_POSTGRES") {
        postgres(&admin, subjects, &dir).await;
    }
}

async fn postgres(admin: &str, subjects: u64, dir: &std::path::Path) {
    use sqlx::Connection as _;
    let name = format!("steward_bench_incidents_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let store = steward_store::PgStore::connect(&url).await.unwrap();
    let master = steward_crypto::MasterKey::generate().unwrap();
    let (_, _, declaration) = common::vault(&dir.join("pg-declaration")).await;
    let vault = Arc::new(
        steward_core::Vault::open(
            store,
            &master,
            declaration,
            Arc::new(steward_core::SystemClock),
        )
        .await
        .unwrap(),
    );
    let at = last_week();
    let started = Instant::now();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for statement in [
        format!(
            "INSERT INTO steward.subjects (id, created_at) SELECT decode(lpad(to_hex(i), 32, '0'), 'hex'), {at} FROM generate_series(1, {subjects}) i"
        ),
        format!(
            "INSERT INTO steward.identities (subject, kind, idx, sealed, purpose) SELECT decode(lpad(to_hex(i), 32, '0'), 'hex'), 'email', decode(md5(i::text) || md5(i::text), 'hex'), decode(md5(i::text) || md5(i::text) || md5(i::text), 'hex'), 'account' FROM generate_series(1, {subjects}) i"
        ),
        format!(
            "INSERT INTO steward.fields (id, subject, category, purpose, source, collected_at, sealed) SELECT decode('f' || lpad(to_hex(i), 31, '0'), 'hex'), decode(lpad(to_hex(i), 32, '0'), 'hex'), 'user.name', 'account', 'form', {at}, decode(md5(i::text) || md5(i::text) || md5(i::text), 'hex') FROM generate_series(1, {subjects}) i"
        ),
        "ANALYZE".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    println!(
        "PostgreSQL: seeded {subjects} people in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ledger = common::ledger(&vault, dir).await;
    measure(ledger, subjects).await;
    drop(vault);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await;
}

/// A webhook notifier that is never called here (no password resets are asked for).
struct NoWebhooks;

impl steward_core::requests::Notifier for NoWebhooks {
    fn post<'a>(
        &'a self,
        _url: &'a str,
        _body: &'a str,
        _signature: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u16, String>> + Send + 'a>> {
        Box::pin(async { Err("no webhooks in this benchmark".to_owned()) })
    }
}

async fn measure<S: steward_core::Store>(
    ledger: Arc<steward_core::ledger::Ledger<S>>,
    subjects: u64,
) {
    let requests = steward_core::requests::Requests::new(ledger, Arc::new(NoWebhooks));
    let register = Incidents::new(Arc::new(requests));
    let cli = Access::new(Principal::cli());
    let before = peak_mib();
    for category in ["user.contact.email", "user.name"] {
        let opened = register
            .open(
                &cli,
                NewIncident {
                    title: format!("{category} exposed"),
                    categories: vec![category.to_owned()],
                    ..NewIncident::default()
                },
            )
            .await
            .unwrap();
        let n = opened.incident.number.to_string();
        let started = Instant::now();
        let found = register
            .derive(
                &cli,
                &n,
                Derive {
                    categories: true,
                    ..Derive::default()
                },
            )
            .await
            .unwrap();
        let derive_secs = started.elapsed().as_secs_f64();
        assert_eq!(found.affected.total, subjects);
        register
            .assess(
                &cli,
                &n,
                NewAssessment {
                    risk: Risk::High,
                    reason: "benchmark".into(),
                    consequences: "phishing".into(),
                    measures: "link revoked".into(),
                    exemptions: vec![],
                    sealed_only: false,
                },
            )
            .await
            .unwrap();
        let started = Instant::now();
        let (_, queued) = register
            .notify_subjects(&cli, &n, false, None)
            .await
            .unwrap();
        let queue_secs = started.elapsed().as_secs_f64();
        let total: u64 = queued.by_channel.iter().map(|(_, n)| n).sum();
        assert_eq!(total, subjects * 2, "e-mail and in-app for each");
        println!(
            "  {category}: affected set of {subjects} in {derive_secs:.2} s; {total} notices (e-mail, in-app) queued in {queue_secs:.2} s = {:.0} / s",
            total as f64 / queue_secs
        );
    }
    println!(
        "  peak memory: {before:.1} MiB before, {:.1} MiB after",
        peak_mib()
    );
}
