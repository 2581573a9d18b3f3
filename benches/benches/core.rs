//! Criterion micro-benchmarks of refbook-core's hot paths.
//!
//! Run: `cargo bench -p refbook-benches --bench core`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use refbook_core::accounts::{Passwords, Tokens};
use refbook_core::books::Isbn;
use refbook_core::timestamp::Timestamp;

fn passwords(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let passwords = Passwords::new();
    let hash = runtime
        .block_on(passwords.hash("correct horse battery".into()))
        .unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash (m=19MiB,t=2,p=1)", |b| {
        b.to_async(&runtime).iter(|| async {
            passwords
                .hash("correct horse battery".into())
                .await
                .unwrap()
        });
    });
    group.bench_function("verify", |b| {
        b.to_async(&runtime).iter(|| async {
            passwords
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        });
    });
    group.finish();
}

fn tokens(c: &mut Criterion) {
    let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef", 7200, 604_800);
    let token = tokens.issue_access(42, 7, Timestamp::now()).unwrap();
    c.bench_function("jwt issue", |b| {
        b.iter(|| tokens.issue_access(42, 7, Timestamp::now()).unwrap());
    });
    c.bench_function("jwt verify", |b| {
        b.iter(|| tokens.verify_access(&token).unwrap())
    });
}

fn isbns(c: &mut Criterion) {
    c.bench_function("isbn parse (hyphens + prefix)", |b| {
        b.iter(|| Isbn::parse(std::hint::black_box("ISBN-13: 978-7-5366-9293-0")).unwrap());
    });
    c.bench_function("isbn parse (full-width)", |b| {
        b.iter(|| Isbn::parse(std::hint::black_box("９７８７５３６６９２９３０")).unwrap());
    });
}

criterion_group!(benches, passwords, tokens, isbns);
criterion_main!(benches);
