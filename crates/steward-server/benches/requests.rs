//! Data-subject requests at scale (seed 004, Mailpro, SQLite): the access package of a subject
//! with 1,000 fields among 1,000,000 subjects, and 1,000 erasures — through the vault one by
//! one and in batches (as due account erasures run), and as whole erasure requests (intake,
//! execution, legal holds, the person's mail).
//!
//!   cargo bench -p steward-server --bench requests
//!
//! `STEWARD_BENCH_SUBJECTS` changes the population (default 1,000,000); `STEWARD_BENCH_DIR`
//! keeps the seeded SQLite store between runs (seeding is the slow part).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_precision_loss
)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_core::store::prelude::*;

use steward_core::consent::{Action, ConsentEvent, Evidence, Method, Party};
use steward_core::requests::{Intake, Requests};
use steward_core::{
    Access, FieldSource, Identity, IdentityKind, NewSubjectInput, Operation, Principal, Role, Scope,
};

const FIELDS: usize = 1_000;
const ERASURES: usize = 1_000;
const PACKAGES: usize = 30;

fn main() {
    let subjects = common::env("STEWARD_BENCH_SUBJECTS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(subjects));
}

fn person(email: &str, purpose: &str, fields: Vec<(String, String)>) -> NewSubjectInput {
    NewSubjectInput {
        identities: vec![Identity::parse(IdentityKind::Email, email).unwrap()],
        fields,
        purpose: purpose.to_owned(),
        source: FieldSource::Import,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

async fn run(subjects: u64) {
    let kept = std::env::var_os("STEWARD_BENCH_DIR").map(PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir = kept.unwrap_or_else(|| temp.path().to_owned());
    let (_, vault, _) = common::vault(&dir).await;
    let cli = Access::new(Principal::cli());

    // The population: each person with an e-mail address, a name and a postal address.
    let marker = dir.join("requests-bench-subjects");
    let have: u64 = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if have < subjects {
        println!("seeding {} subjects …", subjects - have);
        let started = Instant::now();
        let mut n = have;
        while n < subjects {
            let end = (n + 5_000).min(subjects);
            let batch: Vec<_> = (n..end)
                .map(|i| {
                    vault
                        .prepare(&person(
                            &format!("person{i}@example.com"),
                            "account",
                            vec![
                                ("user.name".into(), format!("Person Number {i}")),
                                (
                                    "user.contact.address".into(),
                                    format!("{i} Main Street, 8000 Zurich"),
                                ),
                            ],
                        ))
                        .unwrap()
                })
                .collect();
            vault
                .insert_prepared(&cli, "account", &batch)
                .await
                .unwrap();
            n = end;
            std::fs::write(&marker, n.to_string()).unwrap();
            if n.is_multiple_of(100_000) {
                print!("  {n} ");
                std::io::stdout().flush().unwrap();
            }
        }
        println!(
            "\nseeded in {:.1} s ({:.0} subjects/s)",
            started.elapsed().as_secs_f64(),
            (subjects - have) as f64 / started.elapsed().as_secs_f64()
        );
    }
    println!("population: {subjects} subjects");

    let ledger = common::ledger(&vault, &dir).await;
    let requests = Requests::new(
        Arc::clone(&ledger),
        Arc::new(steward_server::requests::HttpNotifier::new()),
    );

    // The subject of the access request: 1,000 fields (support notes, settings, payment
    // history), 20 consent events, and the audit trail of their reads.
    let run_tag = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let categories = [
        "user.content.private",
        "user.account",
        "user.contact.phone_number",
        "user.name",
    ];
    let fields: Vec<(String, String)> = (0..FIELDS)
        .map(|k| {
            (
                categories[k % categories.len()].to_owned(),
                format!("entry {k}: a support note of some length, with a date 2026-11-{:02} and a reference #{k:06}", k % 28 + 1),
            )
        })
        .collect();
    let target = vault
        .create(
            &cli,
            &person(&format!("target-{run_tag}@example.com"), "account", fields),
        )
        .await
        .unwrap();
    let at = time::OffsetDateTime::now_utc();
    let events: Vec<ConsentEvent> = (0..20)
        .map(|k| ConsentEvent {
            at,
            party: Party::Subject(target),
            action: if k % 2 == 0 {
                Action::Grant
            } else {
                Action::Withdraw
            },
            purpose: Some("newsletter".into()),
            signal: None,
            link: None,
            policy: "2019-02-05".into(),
            terms: None,
            method: Method::Form,
            evidence: Evidence::default(),
            actor: "public:form".into(),
        })
        .collect();
    ledger.import(&cli, events).await.unwrap();

    let package_access = Access::new(Principal {
        actor: "person".into(),
        role: Role::Admin,
        scope: Scope {
            operations: vec![Operation::Export, Operation::Consent],
            ..Scope::default()
        },
    });
    let mut gather = Vec::with_capacity(PACKAGES);
    let mut write = Vec::with_capacity(PACKAGES);
    let mut total = Vec::with_capacity(PACKAGES);
    let mut size = 0;
    for _ in 0..PACKAGES {
        let started = Instant::now();
        let data = requests
            .gather(&package_access, None, Some(target), &[])
            .await
            .unwrap();
        let gathered = started.elapsed();
        assert_eq!(data.fields.len(), FIELDS);
        let zip = steward_export::write_package(Vec::new(), vault.declaration(), &data).unwrap();
        size = zip.len();
        total.push(started.elapsed());
        gather.push(gathered);
        write.push(started.elapsed() - gathered);
    }
    for v in [&mut gather, &mut write, &mut total] {
        v.sort();
    }
    println!(
        "access package, {FIELDS} fields among {subjects} subjects, {PACKAGES} runs: \
         median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} KB zip); \
         gather median {:.1} ms, write median {:.1} ms",
        percentile(&total, 0.5),
        percentile(&total, 0.95),
        percentile(&total, 1.0),
        size / 1024,
        percentile(&gather, 0.5),
        percentile(&write, 0.5),
    );

    // Erasure: fresh subjects with an account and an invoice (kept under the legal hold).
    let fresh = |tag: &str| {
        let vault = Arc::clone(&vault);
        let cli = cli.clone();
        let tag = format!("{tag}-{run_tag}");
        async move {
            let mut ids = Vec::with_capacity(ERASURES);
            for chunk in (0..ERASURES).collect::<Vec<_>>().chunks(500) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|i| {
                        vault
                            .prepare(&person(
                                &format!("{tag}-{i}@example.com"),
                                "account",
                                vec![
                                    ("user.name".into(), format!("Erased Person {i}")),
                                    ("user.contact.address".into(), format!("{i} Lake Road")),
                                ],
                            ))
                            .unwrap()
                    })
                    .collect();
                ids.extend(batch.iter().map(|s| s.id));
                vault
                    .insert_prepared(&cli, "account", &batch)
                    .await
                    .unwrap();
            }
            for id in &ids {
                vault
                    .rectify(
                        &cli,
                        *id,
                        "user.financial",
                        "invoice 2026-0042: CHF 29.00",
                        "invoicing",
                        &FieldSource::Api,
                    )
                    .await
                    .unwrap();
            }
            (ids, tag)
        }
    };

    let (ids, _) = fresh("vault").await;
    let started = Instant::now();
    let mut retained = 0;
    for id in &ids {
        retained += ledger.erase_one(&cli, *id).await.unwrap().retained.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(retained, ERASURES);
    println!(
        "erasures one by one (ledger event + vault): {ERASURES} in {:.2} s = {:.0} / s (each with its invoice retained)",
        elapsed,
        ERASURES as f64 / elapsed
    );

    // One by one, 16 callers at a time (as a server under load): the audit appends of
    // concurrent callers share commits.
    let (ids, _) = fresh("concurrent").await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(ERASURES / 16 + 1) {
        let (ledger, cli, chunk) = (Arc::clone(&ledger), cli.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for id in chunk {
                ledger.erase_one(&cli, id).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "vault erasures one by one, 16 callers: {ERASURES} in {elapsed:.2} s = {:.0} / s",
        ERASURES as f64 / elapsed
    );

    for size in [50, ERASURES] {
        let (ids, _) = fresh(&format!("batch{size}")).await;
        let started = Instant::now();
        let mut retained = 0;
        for chunk in ids.chunks(size) {
            for r in ledger.erase(&cli, chunk).await.unwrap() {
                retained += r.unwrap().retained.len();
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(retained, ERASURES);
        println!(
            "vault erasures in batches of {size}: {ERASURES} in {elapsed:.2} s = {:.0} / s",
            ERASURES as f64 / elapsed
        );
    }

    let (ids, tag) = fresh("request").await;
    let service = Access::new(Principal {
        actor: "key:stw_bench".into(),
        role: Role::Service,
        scope: Scope::default(),
    });
    let started = Instant::now();
    for i in 0..ERASURES {
        requests
            .create(
                &service,
                Intake {
                    kind: "erasure".into(),
                    email: format!("{tag}-{i}@example.com"),
                    purpose: None,
                    changes: Vec::new(),
                    close_account: false,
                    verification: None,
                },
                true,
            )
            .await
            .unwrap();
    }
    let executed = started.elapsed().as_secs_f64();
    requests.tick().await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let mut gone = 0;
    for id in &ids {
        gone += usize::from(vault.store().load_subject(*id).await.unwrap().is_none());
    }
    assert_eq!(gone, ERASURES);
    let filter = steward_core::store::RequestFilter {
        statuses: vec!["completed".into()],
        ..Default::default()
    };
    let completed = vault
        .store()
        .list_requests(&filter, 100_000)
        .await
        .unwrap()
        .len();
    println!(
        "erasure requests (vouched intake, erasure with legal hold, the person's mail to the outbox): \
         {ERASURES} in {elapsed:.2} s = {:.0} / s ({executed:.2} s to erase, {:.2} s for the mail); \
         {completed} completed requests in the store",
        ERASURES as f64 / elapsed,
        elapsed - executed
    );
}
