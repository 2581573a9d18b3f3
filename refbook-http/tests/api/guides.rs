//! The book's guide (深度解析) over HTTP, built with the (mock) model: each section's summary
//! from that section and the ones before it only, in order, then the whole book's; cut at
//! the reader's progress; used by broad questions; rebuilt for a new text; resumed after
//! a restart; bounded by its token budget; `404` for a book with no text, `off` when off.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use refbook_core::backend_tests;
use refbook_core::books::Isbn;
use refbook_core::config::GuideMode;
use refbook_core::domain::{GuideEntry, TextScope};
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::TestDatabase;
use refbook_core::timestamp::Timestamp;
use serde_json::{json, Value};

use crate::grounding::add_library_text;
use crate::helpers::{spawn_app_with, TestApp, SANTI};

fn guide_path() -> String {
    format!("/api/books/{SANTI}/guide/")
}

/// The guide once it is no longer building (asking for it wakes the builder).
async fn finished_guide(app: &TestApp, token: &str) -> Value {
    for _ in 0..200 {
        let guide = app.get(&guide_path(), Some(token)).await;
        let body = guide.assert_ok().clone();
        if body["status"] != "building" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the guide was never built");
}

/// The user messages the model was sent, oldest first.
fn asked(app: &TestApp) -> Vec<String> {
    app.llm
        .requests()
        .iter()
        .map(|r| {
            r["messages"].as_array().unwrap().last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The three chapters' own sentences (the library text of `add_library_text`).
const CHAPTERS: [&str; 3] = [
    "汪淼是纳米材料研究者",
    "叶文洁在红岸基地负责监听",
    "汪淼戴上V装具",
];

async fn a_guide_is_built_in_order_and_cut_at_the_progress(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.books.guide = GuideMode::Auto).await;
    let (me, id) = app.user_with_conversation("reader").await;
    app.get(&guide_path(), Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");
    add_library_text(&app).await;
    let guide = finished_guide(&app, &me).await;
    assert_eq!(guide["status"], "ready", "{guide}");
    assert_eq!(
        (guide["done"].as_u64(), guide["total"].as_u64()),
        (Some(3), Some(3))
    );
    let sections = guide["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 3);
    assert_eq!(sections[1]["title"], "第二章 红岸");
    assert!(guide["book"]["summary"].is_string(), "{guide}");
    let text = app
        .get(&format!("/api/books/{SANTI}/text/"), Some(&me))
        .await;
    assert_eq!(
        text.assert_ok()["guide"],
        json!({"status": "ready", "done": 3, "total": 3})
    );

    // Map in reading order, each from its own section and what came before; then reduce.
    let prompts = asked(&app);
    assert_eq!(prompts.len(), 4, "{prompts:#?}");
    for (n, prompt) in prompts.iter().take(3).enumerate() {
        assert!(prompt.contains(CHAPTERS[n]), "section {n}: {prompt}");
        for later in &CHAPTERS[n + 1..] {
            assert!(
                !prompt.contains(later),
                "section {n} saw what follows: {prompt}"
            );
        }
    }
    assert!(
        prompts[1].contains("第一章 科学边界："),
        "the summary before: {}",
        prompts[1]
    );
    assert!(prompts[3].contains("第三章 三体游戏："), "{}", prompts[3]);

    // Cut at the reader's progress: no book summary, no section past it.
    app.call(
        Method::PUT,
        &format!("/api/books/{SANTI}/progress/"),
        Some(&me),
        Some(json!({"section": 0})),
    )
    .await
    .assert_ok();
    let cut = app.get(&guide_path(), Some(&me)).await;
    let cut = cut.assert_ok();
    assert!(cut["book"].is_null(), "{cut}");
    assert_eq!(cut["sections"].as_array().unwrap().len(), 1);

    // A broad question gets the guide up to the progress; a moment's question does not.
    app.ask_streaming(&me, id, "这本书讲了什么？").await;
    let system = app.llm.requests().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("这本书的导读"), "{system}");
    assert!(system.contains("「第一章 科学边界」："), "{system}");
    assert!(!system.contains("「第二章 红岸」："), "{system}");
    assert!(!system.contains("全书："), "{system}");
    app.delete(&format!("/api/books/{SANTI}/progress/"), Some(&me))
        .await
        .assert_ok();
    app.ask_streaming(&me, id, "这本书的主题是什么？").await;
    let system = app.llm.requests().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("全书："), "{system}");
    app.ask_streaming(&me, id, "叶文洁在红岸做什么？").await;
    let system = app.llm.requests().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!system.contains("这本书的导读"), "{system}");

    // A reader's own copy gets a guide of its own.
    let mine =
        "# 第一章 我的版本\n\n这是读者自己的版本，只有一章，讲的是面壁者罗辑的故事和他的选择。\n";
    let put = app
        .send(
            app.client
                .put(app.url(&format!("/api/books/{SANTI}/text/")))
                .bearer_auth(&me)
                .header("content-type", "text/markdown")
                .body(mine),
        )
        .await;
    assert_eq!(put.status.as_u16(), 202, "{}", put.text);
    let own = finished_guide(&app, &me).await;
    assert_eq!(own["total"], 1, "{own}");
    assert!(own["sections"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("罗辑"));
}

async fn a_guide_resumes_where_a_dead_worker_stopped(db: TestDatabase) {
    let url = db.url().to_owned();
    let app = spawn_app_with(db, |c| c.core.books.guide = GuideMode::Auto).await;
    let token = crate::helpers::token(&app.register("reader").await).to_owned();
    add_library_text(&app).await;
    // Another worker wrote the first summary and died: its lease has run out.
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let text = store
        .book_text(&Isbn::parse(SANTI).unwrap(), TextScope::Library)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .lease_guide(text.id, Timestamp::now(), Timestamp::now())
        .await
        .unwrap());
    let first = GuideEntry {
        section: Some(0),
        summary: "写好的第一章概要".to_owned(),
    };
    store
        .put_guide_entry(text.id, &first, 500, Timestamp::from_millis(0))
        .await
        .unwrap();
    store.close().await;

    let guide = finished_guide(&app, &token).await;
    assert_eq!(guide["status"], "ready");
    assert_eq!(guide["sections"][0]["summary"], "写好的第一章概要");
    let prompts = asked(&app);
    assert_eq!(
        prompts.len(),
        3,
        "sections 2 and 3, then the book: {prompts:#?}"
    );
    assert!(prompts[0].contains("写好的第一章概要"), "{}", prompts[0]);
    assert!(prompts[0].contains(CHAPTERS[1]));
}

async fn a_guide_stays_within_its_budget(db: TestDatabase) {
    // A budget that holds one summary: the guide stops there, finished.
    let app = spawn_app_with(db, |c| {
        c.core.books.guide = GuideMode::Auto;
        c.core.books.guide_token_budget = 700;
    })
    .await;
    let token = crate::helpers::token(&app.register("reader").await).to_owned();
    add_library_text(&app).await;
    let bounded = finished_guide(&app, &token).await;
    assert_eq!(bounded["status"], "ready", "{bounded}");
    assert_eq!(bounded["done"], 1, "{bounded}");
    assert!(bounded["book"].is_null());
    assert_eq!(asked(&app).len(), 1);
}

async fn guides_off_are_said_to_be_off(db: TestDatabase) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = crate::helpers::token(&app.register("reader").await).to_owned();
    add_library_text(&app).await;
    let guide = app.get(&guide_path(), Some(&token)).await;
    let guide = guide.assert_ok();
    assert_eq!(guide["status"], "off");
    assert_eq!(guide["total"], 3);
    assert!(app.llm.requests().is_empty());
}

backend_tests!(
    a_guide_is_built_in_order_and_cut_at_the_progress,
    a_guide_resumes_where_a_dead_worker_stopped,
    a_guide_stays_within_its_budget,
    guides_off_are_said_to_be_off,
);
