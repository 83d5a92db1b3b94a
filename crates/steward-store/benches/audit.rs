//! Audit trail throughput on the embedded default (SQLite, `synchronous = FULL`, so every commit
//! is on disk): appending (batched by the store, and grouped across concurrent callers by the
//! audit log) and verifying (the whole chain read back and checked, and the checking alone).
//!
//! `cargo bench -p steward-store --bench audit`

// A benchmark times with the wall clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_core::store::prelude::*;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_core::SubjectId;
use steward_core::audit::{AuditChain, AuditEntry, AuditLog, Outcome, SealedEntry};
use steward_store::SqliteStore;
use time::OffsetDateTime;
use uuid::Uuid;

/// A fixed audit key for the benchmark.
fn key() -> AuditChain {
    AuditChain::new(Default::default())
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i as i64),
        request: Uuid::from_u128(u128::from(i)),
        actor: "key:stw_1a2b3c4d".into(),
        role: "service".into(),
        action: "subject.read".into(),
        purpose: Some("account".into()),
        subject: Some(SubjectId(Uuid::from_u128(u128::from(i) << 64))),
        categories: vec!["user.contact.email".into(), "user.name".into()],
        outcome: Outcome::Ok,
        code: None,
        ticket: None,
        flagged: false,
        detail: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

const BATCH: u64 = 1000;
const VERIFY_ENTRIES: u64 = 200_000;

fn audit(c: &mut Criterion) {
    let rt = runtime();
    let chain = key();
    let mut group = c.benchmark_group("audit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));

    // One store per benchmark; appends keep growing the same chain, as in production.
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(SqliteStore::open(dir.path())).unwrap();
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("append/sqlite/batch-of-1000", |b| {
        let mut n = 0;
        b.iter(|| {
            let entries: Vec<_> = (n..n + BATCH).map(entry).collect();
            n += BATCH;
            rt.block_on(store.append_audit(entries, &chain)).unwrap()
        });
    });

    // 64 callers at once, each waiting for its own entry to be durable.
    let log = AuditLog::new(key());
    let store = Arc::new(store);
    const CALLERS: u64 = 64;
    const PER_CALLER: u64 = 50;
    group.throughput(Throughput::Elements(CALLERS * PER_CALLER));
    group.bench_function("append/sqlite/64-concurrent-callers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(async {
                    let mut tasks = Vec::new();
                    for caller in 0..CALLERS {
                        let (log, store) = (log.clone(), Arc::clone(&store));
                        tasks.push(tokio::spawn(async move {
                            for i in 0..PER_CALLER {
                                log.record(store.as_ref(), entry(caller * 1000 + i))
                                    .await
                                    .unwrap();
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });

    // Verification over a chain of VERIFY_ENTRIES.
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(SqliteStore::open(dir.path())).unwrap();
    let mut n = 0;
    while n < VERIFY_ENTRIES {
        let entries: Vec<_> = (n..n + 5000).map(entry).collect();
        rt.block_on(store.append_audit(entries, &chain)).unwrap();
        n += 5000;
    }
    group.throughput(Throughput::Elements(VERIFY_ENTRIES));
    let raw = rt
        .block_on(sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("steward.db").display()
        )))
        .unwrap();
    group.bench_function("verify/sqlite/200k", |b| {
        b.iter(|| {
            let verified = rt
                .block_on(steward_core::audit::verify(&store, &chain, |_, _| {}))
                .unwrap()
                .unwrap();
            assert_eq!(verified.entries, VERIFY_ENTRIES);
        });
    });
    // The same in one segment (one task reading and checking): the baseline for the split.
    group.bench_function("verify/sqlite/200k/one-segment", |b| {
        b.iter(|| {
            let verified = rt
                .block_on(steward_core::audit::verify_in(
                    &store,
                    &chain,
                    1,
                    1,
                    |_, _| {},
                ))
                .unwrap()
                .unwrap();
            assert_eq!(verified.entries, VERIFY_ENTRIES);
        });
    });

    // The floor: SQLite touching every byte of every column of every row, nothing handed out.
    group.bench_function("baseline/sqlite-scan/200k", |b| {
        b.iter(|| {
            let (bytes,): (i64,) = rt
                .block_on(
                    sqlx::query_as(
                        "SELECT sum(length(request) + length(actor) + length(role) + length(action) \
                         + ifnull(length(purpose), 0) + ifnull(length(subject), 0) + length(categories) \
                         + length(outcome) + ifnull(length(code), 0) + ifnull(length(ticket), 0) + flagged \
                         + ifnull(length(detail), 0) + length(prev) + length(hash) + (at & 255) + (seq & 255)) FROM audit_entries",
                    )
                    .fetch_one(&raw),
                )
                .unwrap();
            assert!(bytes > 0);
        });
    });

    // The checking alone, entries already in memory.
    let head = rt.block_on(store.audit_head()).unwrap();
    let entries: Vec<SealedEntry> = rt
        .block_on(store.audit_entries(0, VERIFY_ENTRIES, u32::MAX))
        .unwrap();
    let checkpoints = rt
        .block_on(store.audit_checkpoints(0, VERIFY_ENTRIES))
        .unwrap();
    group.bench_function("verify/in-memory/200k", |b| {
        b.iter(|| check(&chain, head.clone(), &entries, &checkpoints));
    });
    group.finish();
}

fn check(
    chain: &AuditChain,
    head: steward_core::audit::Head,
    entries: &[SealedEntry],
    checkpoints: &[steward_core::audit::Seal],
) -> u64 {
    let mut v = chain.verifier(head);
    let mut cps = checkpoints.iter().peekable();
    for (i, e) in entries.iter().enumerate() {
        v.feed(e, entries.get(i + 1)).unwrap();
        while let Some(cp) = cps.next_if(|cp| cp.seq < v.expected()) {
            v.checkpoint(cp).unwrap();
        }
    }
    v.finish().unwrap().entries
}

criterion_group!(benches, audit);
criterion_main!(benches);
