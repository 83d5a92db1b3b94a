//! How fast a declaration is checked and published: `steward check`, `notice` and `ropa` on
//! the largest seed site (ALLCOT: 11 purposes, 10 processors, 7 cookies) and on a generated
//! declaration 20 times its size. Run: `cargo bench -p steward-policy --bench declaration`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_policy::{Source, check, notice, ropa};

fn seed() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/003-allcot.toml"
    ))
    .unwrap()
}

/// The seed declaration with its purposes repeated `times` times under new ids.
fn large(times: usize) -> String {
    let text = seed();
    let start = text.find("[[purposes]]").unwrap();
    let end = text.find("# ---- Processors").unwrap();
    let purposes = &text[start..end];
    let mut out = text.clone();
    for i in 1..times {
        out.push_str(&purposes.replace("id = \"", &format!("id = \"copy{i}-")));
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("declaration");
    for (name, text) in [("seed-003", seed()), ("seed-003-x20", large(20))] {
        let source = Source::new("privacy.toml", text.clone());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("check/{name}"), |b| {
            b.iter(|| check(black_box(&source)).unwrap())
        });
        let declaration = check(&source).unwrap().declaration.expect("valid");
        group.bench_function(format!("notice-html/{name}"), |b| {
            b.iter(|| notice::build(black_box(&declaration)).to_html())
        });
        group.bench_function(format!("ropa-xlsx/{name}"), |b| {
            b.iter(|| ropa::build(black_box(&declaration)).to_xlsx().unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
