//! Answers grounded in the book's own text: every path to the model (a conversation's
//! question, the stateless chat, the OpenAI face) puts the passages the question is about
//! in the prompt, numbered, from a text added by another process on the same database.

use std::sync::Arc;

use refbook_core::backend_tests;
use refbook_core::books::{BookTexts, Isbn};
use refbook_core::config::BookSettings;
use refbook_core::domain::{TextFormat, TextScope};
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, token, Reply, TestApp, SANTI};

const NOVEL: &str = "第一章 科学边界\n汪淼是纳米材料研究者。他在倒计时的幻觉里度过了许多天。\n\n\
第二章 红岸\n叶文洁在红岸基地负责监听和发射信号。她按下了发射键，太阳放大了她的声音。\n\n\
第三章 三体游戏\n汪淼戴上V装具，进入了三体游戏，看见了乱纪元与恒纪元。\n";

/// The system prompt of the model's `n`th request.
fn system_of(app: &TestApp, n: usize) -> String {
    app.llm.requests()[n]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds the library's text the way `refbook-cli books text add` does: another process,
/// the same database.
async fn add_library_text(app: &TestApp) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&app.db_url).await.unwrap());
    BookTexts::new(store.clone(), &BookSettings::default())
        .add(
            &Isbn::parse(SANTI).unwrap(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    store.close().await;
}

async fn every_path_to_the_model_is_grounded_in_the_text(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("reader").await;
    let question = "叶文洁在红岸基地做什么？";

    app.ask_streaming(&t, id, question).await;
    let before = system_of(&app, 0);
    assert!(before.contains("没有这本书的原文"), "{before}");
    assert!(!before.contains("[1]"));

    add_library_text(&app).await;
    app.ask_streaming(&t, id, question).await;
    let grounded = system_of(&app, 1);
    let first = grounded
        .find("[1] （第二章 红岸）叶文洁在红岸基地")
        .expect(&grounded);
    assert!(
        grounded[first..].contains("[1]；"),
        "the instruction to cite follows"
    );
    assert!(!grounded.contains("没有这本书的原文"));
    let asked = app.llm.requests()[1]["messages"].clone();
    assert_eq!(
        asked.as_array().unwrap().last().unwrap()["content"],
        question,
        "the question itself is unchanged"
    );

    // A follow-up finds its subject through the previous question.
    app.ask_streaming(&t, id, "然后呢？").await;
    assert!(system_of(&app, 2).contains("（第二章 红岸）"));

    // The stateless chat and the OpenAI face take the same step.
    let stateless = app
        .post(
            "/api/chat/stream/",
            Some(&t),
            json!({"isbn": SANTI, "messages": [{"role": "user", "content": "汪淼进入了什么游戏？"}]}),
        )
        .await;
    assert_eq!(stateless.status.as_u16(), 200, "{}", stateless.text);
    assert!(system_of(&app, 3).contains("[1] （第三章 三体游戏）"));
    let completion = app
        .post(
            "/v1/chat/completions",
            Some(&t),
            json!({"model": SANTI, "messages": [{"role": "user", "content": "汪淼是做什么的？"}]}),
        )
        .await;
    assert_eq!(completion.status.as_u16(), 200, "{}", completion.text);
    let system: Value = app.llm.requests()[4]["messages"][0]["content"].clone();
    assert!(system
        .as_str()
        .unwrap()
        .contains("（第一章 科学边界）汪淼是纳米材料研究者"));
}

async fn put_text(app: &TestApp, token: &str, isbn: &str, media_type: &str, body: &[u8]) -> Reply {
    app.send(
        app.client
            .put(app.url(&format!("/api/books/{isbn}/text/")))
            .bearer_auth(token)
            .header("content-type", media_type)
            .body(body.to_vec()),
    )
    .await
}

async fn a_readers_copy_is_uploaded_searched_and_theirs_alone(db: TestDatabase) {
    let app = spawn_app_with(db, |config| config.core.books.text_max_bytes = 4096).await;
    let (me, id) = app.user_with_conversation("reader").await;
    let other = token(&app.register("other").await).to_owned();
    let text_path = format!("/api/books/{SANTI}/text/");
    app.get(&text_path, Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");

    let mine = "# 我的笔记\n\n面壁计划是人类对三体危机的回应。罗辑是第四位面壁者。\n";
    let uploaded = put_text(
        &app,
        &me,
        SANTI,
        "text/markdown; charset=utf-8",
        mine.as_bytes(),
    )
    .await;
    assert_eq!(uploaded.status.as_u16(), 202, "{}", uploaded.text);
    assert_eq!(uploaded.body["status"], "ready");
    assert_eq!(uploaded.body["scope"], "mine");
    assert_eq!(uploaded.body["format"], "markdown");
    assert_eq!(uploaded.body["sections"][0]["title"], "我的笔记");
    assert_eq!(
        app.get(&text_path, Some(&me)).await.assert_ok()["scope"],
        "mine"
    );
    app.get(&text_path, Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");

    let found = app
        .get(
            &format!("/api/books/{SANTI}/passages/?q=%E9%9D%A2%E5%A3%81%E8%80%85&limit=50"),
            Some(&me),
        )
        .await;
    let results = found.assert_ok()["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["section"]["title"], "我的笔记");
    assert!(results[0]["text"].as_str().unwrap().contains("面壁者"));
    app.get(&format!("/api/books/{SANTI}/passages/?q=x"), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&format!("/api/books/{SANTI}/passages/"), Some(&me))
        .await
        .assert_error(400, "INVALID_PARAMS");
    app.get(
        &format!("/api/books/{SANTI}/passages/?q=x&limit=0"),
        Some(&me),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");

    // My questions are answered from my copy.
    app.ask_streaming(&me, id, "谁是面壁者？").await;
    assert!(system_of(&app, 0).contains("[1] （我的笔记）面壁计划"));

    // Bad uploads: refused, my copy stays.
    for (media_type, body, status) in [
        ("application/pdf", mine.as_bytes().to_vec(), 415),
        ("application/json", mine.as_bytes().to_vec(), 415),
        ("text/plain", b" \n\t ".to_vec(), 400),
        ("text/plain", vec![0x81, 0x20, 0xff, 0xfe], 400),
        ("text/plain", "长".repeat(2000).into_bytes(), 413),
    ] {
        let refused = put_text(&app, &me, SANTI, media_type, &body).await;
        assert_eq!(
            refused.status.as_u16(),
            status,
            "{media_type}: {}",
            refused.text
        );
    }
    put_text(&app, &me, "12345", "text/plain", b"text")
        .await
        .assert_error(400, "INVALID_PARAMS");
    assert_eq!(
        app.get(&text_path, Some(&me)).await.assert_ok()["sections"][0]["title"],
        "我的笔记"
    );

    app.delete(&text_path, Some(&me)).await.assert_ok();
    app.delete(&text_path, Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(&text_path, Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");
}

backend_tests!(
    every_path_to_the_model_is_grounded_in_the_text,
    a_readers_copy_is_uploaded_searched_and_theirs_alone,
);
