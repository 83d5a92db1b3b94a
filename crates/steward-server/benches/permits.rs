//! Permit decisions with 1,000,000 subjects and 10,000,000 ledger events (seed 004, Mailpro):
//! loading the ledger, deciding in process (one and two threads), and over HTTP with wrk.
//!
//!   cargo bench -p steward-server --bench permits
//!
//! `STEWARD_BENCH_SUBJECTS` and `STEWARD_BENCH_EVENTS` change the size; `STEWARD_BENCH_DIR`
//! keeps the seeded SQLite store between runs (seeding is the slow part). wrk must be installed
//! (`apt-get install wrk`) for the HTTP part.

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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use steward_core::store::prelude::*;

use steward_core::consent::{Action, ConsentEvent, Evidence, Method, Party, Signal};
use steward_core::ledger::{Ledger, LedgerOptions};
use steward_core::{Access, Principal, SubjectId};

fn subject(i: u64) -> SubjectId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    b[8..].copy_from_slice(&i.to_be_bytes());
    SubjectId(uuid::Uuid::from_bytes(b))
}

/// The `k`-th event of subject `i`: a realistic mix of grants, confirmations, withdrawals,
/// objections, signals and acceptances.
fn event(i: u64, k: u64, policy: &str, terms: &dyn Fn(&str) -> Option<String>) -> ConsentEvent {
    let (action, purpose, signal) = match (k + i) % 10 {
        0 => (Action::Grant, Some("site-statistics"), None),
        1 => (Action::Grant, Some("newsletter"), None),
        2 => (Action::Confirm, Some("newsletter"), None),
        3 => (Action::Grant, Some("advertising"), None),
        4 => (Action::Grant, Some("preferences"), None),
        5 => (Action::Withdraw, Some("advertising"), None),
        6 if i.is_multiple_of(7) => (Action::Object, Some("product-emails"), None),
        6 => (Action::Accept, None, None),
        7 if i.is_multiple_of(5) => (Action::Signal, None, Some(Signal::Gpc)),
        7 => (Action::Grant, Some("site-statistics"), None),
        8 => (Action::Withdraw, Some("site-statistics"), None),
        _ => (Action::Grant, Some("site-statistics"), None),
    };
    ConsentEvent {
        at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000),
        party: Party::Subject(subject(i)),
        action,
        purpose: purpose.map(str::to_owned),
        signal,
        link: None,
        policy: policy.to_owned(),
        terms: purpose.and_then(terms),
        method: Method::Banner,
        evidence: Evidence {
            notice: Some(policy.to_owned()),
            ip: Some("3f1c2a9b8d7e6f5a4b3c2d1e".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        },
        actor: "public:banner".into(),
    }
}

fn main() {
    let subjects = common::env("STEWARD_BENCH_SUBJECTS", 1_000_000);
    let events = common::env("STEWARD_BENCH_EVENTS", 10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(subjects, events));
}

async fn run(subjects: u64, total: u64) {
    let kept = std::env::var_os("STEWARD_BENCH_DIR").map(PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir = kept.clone().unwrap_or_else(|| temp.path().to_owned());
    let (store, vault, declaration) = common::vault(&dir).await;
    let mailer = Arc::new(
        steward_server::mail::OutboxMailer::new(dir.join("outbox"), "privacy@example.com").unwrap(),
    );
    let options = LedgerOptions {
        public_url: "http://127.0.0.1".into(),
        unsubscribe_mailto: None,
    };
    let ledger = Ledger::open(Arc::clone(&vault), mailer.clone(), options.clone(), |_| {})
        .await
        .unwrap();
    let have = ledger.seq();
    if have < total {
        println!("seeding {} events for {subjects} subjects …", total - have);
        let rules = ledger.rules().clone();
        let terms = move |p: &str| {
            rules
                .purpose(p)
                .and_then(|i| rules.rule(i))
                .map(|r| r.terms_text.clone())
        };
        let access = Access::new(Principal::cli());
        let started = Instant::now();
        let per = total / subjects;
        let mut n = have;
        while n < total {
            let batch: Vec<ConsentEvent> = (n..(n + 20_000).min(total))
                .map(|j| event(j % subjects, j / subjects.max(1), "2019-02-05", &terms))
                .collect();
            n += batch.len() as u64;
            ledger.import(&access, batch).await.unwrap();
        }
        println!(
            "seeded in {:.1} s ({:.0} events/s, {per} per subject)",
            started.elapsed().as_secs_f64(),
            (total - have) as f64 / started.elapsed().as_secs_f64()
        );
    }
    drop(ledger);

    // Loading: what `steward serve` does at start.
    let started = Instant::now();
    let ledger = Arc::new(
        Ledger::open(Arc::clone(&vault), mailer, options, |_| {})
            .await
            .unwrap(),
    );
    let load = started.elapsed().as_secs_f64();
    println!(
        "load: {} events in {load:.1} s ({:.0} events/s)",
        ledger.seq(),
        ledger.seq() as f64 / load
    );

    // In process: random subjects, the purposes a page asks about.
    let purposes = [
        "site-statistics",
        "advertising",
        "newsletter",
        "account",
        "product-emails",
    ];
    let queries: Vec<(Party, &str)> = (0..2_000_000u64)
        .map(|q| {
            let i = q.wrapping_mul(2_654_435_761) % subjects;
            (Party::Subject(subject(i)), purposes[(q % 5) as usize])
        })
        .collect();
    let mut allowed = 0u64;
    let started = Instant::now();
    for _ in 0..3 {
        for (party, purpose) in &queries {
            allowed += u64::from(ledger.permit(party, purpose).unwrap().allowed);
        }
    }
    let one = (3 * queries.len()) as f64 / started.elapsed().as_secs_f64();
    println!("in process, 1 thread: {one:.0} decisions/s ({allowed} allowed)");
    let queries = Arc::new(queries);
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let l = Arc::clone(&ledger);
            let q = Arc::clone(&queries);
            std::thread::spawn(move || {
                let mut a = 0u64;
                for (party, purpose) in q.iter().skip(t).step_by(2).cycle().take(3_000_000) {
                    a += u64::from(l.permit(party, purpose).unwrap().allowed);
                }
                a
            })
        })
        .collect();
    let a: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let two = 6_000_000f64 / started.elapsed().as_secs_f64();
    println!("in process, 2 threads: {two:.0} decisions/s ({a} allowed)");

    // Over HTTP, with wrk on the same two cores.
    let Some(wrk) = which("wrk") else {
        println!("wrk is not installed: HTTP part skipped (apt-get install wrk)");
        return;
    };
    let key = steward_core::api_key::NewApiKey::generate(
        steward_core::Role::Service,
        steward_core::Scope::default(),
        None,
        "bench",
        time::OffsetDateTime::UNIX_EPOCH,
    )
    .unwrap();
    store.insert_api_key(&key.record).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::clone(&ledger);
    let decl = Arc::clone(&declaration);
    tokio::spawn(async move {
        let _ = steward_server::serve(
            listener,
            &decl,
            served,
            &steward_server::ServerConfig::default(),
            std::future::pending(),
        )
        .await;
    });
    let paths: Vec<String> = (0..10_000u64)
        .map(|q| {
            let i = q.wrapping_mul(2_654_435_761) % subjects;
            format!(
                "\"/v1/permits?subject={}&purpose={}\"",
                subject(i),
                purposes[(q % 5) as usize]
            )
        })
        .collect();
    let script = temp.path().join("permits.lua");
    std::fs::write(
        &script,
        format!(
            "paths = {{{}}}\nwrk.headers[\"Authorization\"] = \"Bearer {}\"\nrequest = function()\n  return wrk.format(\"GET\", paths[math.random(#paths)])\nend\n",
            paths.join(","),
            &*key.secret
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(wrk)
        .args(["-t2", "-c64", "-d15s", "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://{address}"))
        .output()
        .await
        .unwrap();
    println!(
        "wrk -t2 -c64 -d15s (permits over loopback):\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    drop(kept);
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
