//! Criterion micro-benchmarks of the hot paths: argon2id, JWT, ISBN parsing, the SSE
//! encoder and the prompt builder.
//!
//! Run: `cargo bench -p refbook-benches --bench core`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use refbook_core::accounts::{Passwords, Tokens};
use refbook_core::books::{BookFields, Isbn};
use refbook_core::chat::{prompt, Persona, ReplyEvent, Role};
use refbook_core::domain::{ConversationId, MessageId, PersonaId, UserId};
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
    let token = tokens
        .issue_access(UserId::new(42), 7, Timestamp::now())
        .unwrap();
    c.bench_function("jwt issue", |b| {
        b.iter(|| {
            tokens
                .issue_access(UserId::new(42), 7, Timestamp::now())
                .unwrap()
        });
    });
    c.bench_function("jwt verify", |b| {
        b.iter(|| tokens.verify_access(&token, Timestamp::now()).unwrap())
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

fn sse_encoder(c: &mut Criterion) {
    let reply = refbook_core::testing::sample_reply(
        ConversationId::new(7),
        MessageId::new(42),
        "deepseek-reasoner",
    );
    let content = ReplyEvent::Content(std::sync::Arc::from(
        "这是回答里的一句话，长度和真实模型的一块差不多。",
    ));
    let encoder = refbook_http::sse::ChunkEncoder::new(&reply);
    let mut frame = Vec::with_capacity(512);
    c.bench_function("sse encode one content chunk", |b| {
        b.iter(|| {
            frame.clear();
            encoder.write_sse(1234, std::hint::black_box(&content), &mut frame);
            frame.len()
        });
    });
}

fn prompt_builder(c: &mut Criterion) {
    let now = Timestamp::now();
    let book = BookFields {
        title: "三体".into(),
        authors: vec!["刘慈欣".into()],
        introduction: Some(
            "文化大革命如火如荼进行的同时，军方探寻外星文明的绝秘计划“红岸工程”取得了突破性进展。"
                .repeat(10),
        ),
        ..Default::default()
    }
    .into_book(&Isbn::parse("9787536692930").unwrap(), "catalog", now);
    let persona = Persona {
        id: PersonaId::new(1),
        key: Some("librarian".into()),
        name: "图书管理员".into(),
        description: String::new(),
        builtin: true,
        created_at: now,
    };
    // Forty turns of a long conversation, a few hundred characters each.
    let history: Vec<(Role, String)> = (0..40)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            (role, format!("第{i}轮：").repeat(60))
        })
        .collect();
    c.bench_function("prompt build (system + 40 turns, 8k budget)", |b| {
        b.iter(|| {
            let question = "罗辑为什么能成为面壁者？";
            let system = prompt::system_prompt(&book, &persona, question);
            prompt::build(system, &history, question, 8192, 1.15).unwrap()
        });
    });
}

criterion_group!(
    benches,
    passwords,
    tokens,
    isbns,
    sse_encoder,
    prompt_builder
);
criterion_main!(benches);
