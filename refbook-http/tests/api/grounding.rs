//! Answers grounded in the book's own text: every path to the model (a conversation's
//! question, the stateless chat, the OpenAI face) puts the passages the question is about
//! in the prompt, numbered, from a text added by another process on the same database.

use std::sync::Arc;

use refbook_core::backend_tests;
use refbook_core::books::{BookTexts, Isbn};
use refbook_core::config::BookSettings;
use refbook_core::domain::{TextFormat, TextScope};
use refbook_core::embed::EmbedderSource;
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};

use std::time::Duration;

use refbook_core::testing::MockReply;

use crate::helpers::{
    parse_sse, spawn_app, spawn_app_with, texts, token, Reply, Sse, TestApp, SANTI,
};

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
pub(crate) async fn add_library_text(app: &TestApp) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&app.db_url).await.unwrap());
    BookTexts::new(
        store.clone(),
        &BookSettings::default(),
        Arc::new(EmbedderSource::off()),
    )
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
        ("application/octet-stream", mine.as_bytes().to_vec(), 415),
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

/// The events of an SSE body, with their ids.
fn events(body: &str) -> Vec<(u64, Value)> {
    parse_sse(body)
        .into_iter()
        .filter_map(|e| match e {
            Sse::Event(id, data) => Some((id, data)),
            _ => None,
        })
        .collect()
}

async fn sources_and_citations_travel_with_the_reply(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("reader").await;
    add_library_text(&app).await;
    let answer = "她在红岸基地负责监听和发射信号[1]。";
    app.llm.push(MockReply::answer(
        &[],
        &["她在红岸基地", "负责监听和发射信号[1]。"],
        Duration::ZERO,
    ));
    let live = app.ask_streaming(&t, id, "叶文洁在红岸基地做什么？").await;
    let live_events = events(&live.text);
    let sources_at = live_events
        .iter()
        .position(|(_, e)| e.get("sources").is_some())
        .expect(&live.text);
    let first_content = live_events
        .iter()
        .position(|(_, e)| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .unwrap();
    assert!(
        sources_at < first_content,
        "the sources come before the answer"
    );
    let (_, with_sources) = &live_events[sources_at];
    assert_eq!(with_sources["choices"][0]["delta"], json!({}));
    let sources = with_sources["sources"].clone();
    assert_eq!(sources[0]["n"], 1);
    assert_eq!(sources[0]["section"]["title"], "第二章 红岸");
    assert!(sources[0]["quote"]
        .as_str()
        .unwrap()
        .contains("叶文洁在红岸基地"));
    let start = sources[0]["start"].as_u64().unwrap() as usize;
    let end = sources[0]["end"].as_u64().unwrap() as usize;
    assert_eq!(
        NOVEL
            .chars()
            .skip(start)
            .take(end - start)
            .collect::<String>(),
        sources[0]["quote"].as_str().unwrap(),
        "start and end are character offsets into the text"
    );
    let last = &live_events.last().unwrap().1;
    assert_eq!(last["citations"], json!([1]));
    assert_eq!(
        texts(&parse_sse(&live.text)).0,
        answer,
        "delta.content is exactly the answer"
    );

    // Stored on the message, and replayed the same by a resume from the start.
    let conversation = app
        .get(&format!("/api/conversations/{id}/"), Some(&t))
        .await;
    let stored = conversation.assert_ok()["messages"][1].clone();
    assert_eq!(stored["content"], answer);
    assert_eq!(stored["sources"], sources);
    assert_eq!(stored["citations"], json!([1]));
    let resumed = app
        .send(
            app.client
                .get(app.url(&format!("/api/conversations/{id}/stream/")))
                .bearer_auth(&t)
                .header("last-event-id", "0"),
        )
        .await;
    assert_eq!(
        events(&resumed.text),
        live_events,
        "a resume replays the same events"
    );
    let poll = app
        .get(
            &format!("/api/conversations/{id}/reply/?cursor=0"),
            Some(&t),
        )
        .await;
    assert_eq!(poll.assert_ok()["sources"], sources);
    assert_eq!(poll.body["citations"], json!([1]));
    assert_eq!(poll.body["delta"], answer);
    let ndjson = app
        .send(
            app.client
                .get(app.url(&format!("/api/conversations/{id}/stream/")))
                .bearer_auth(&t)
                .header("accept", "application/x-ndjson"),
        )
        .await;
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["sources"] == sources));
    assert!(lines.iter().any(|l| l["citations"] == json!([1])));

    // The OpenAI face: on the chunks when streamed, at the top level when not.
    app.llm.push(MockReply::answer(
        &[],
        &["汪淼是纳米材料研究者[1]。"],
        Duration::ZERO,
    ));
    let whole = app
        .post(
            "/v1/chat/completions",
            Some(&t),
            json!({"model": SANTI, "messages": [{"role": "user", "content": "汪淼是做什么的？"}]}),
        )
        .await;
    assert_eq!(
        whole.assert_ok()["sources"][0]["section"]["title"],
        "第一章 科学边界"
    );
    assert_eq!(whole.body["citations"], json!([1]));
    app.llm.push(MockReply::answer(
        &[],
        &["汪淼是纳米材料研究者[1]。"],
        Duration::ZERO,
    ));
    let streamed = app
        .post(
            "/v1/chat/completions",
            Some(&t),
            json!({"model": SANTI, "stream": true, "messages": [{"role": "user", "content": "汪淼是做什么的？"}]}),
        )
        .await;
    let chunks: Vec<Value> = streamed
        .text
        .split("\n\n")
        .filter_map(|b| b.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let with_sources = chunks
        .iter()
        .position(|c| c.get("sources").is_some())
        .expect(&streamed.text);
    let first_text = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .unwrap();
    assert!(with_sources < first_text);
    assert_eq!(chunks[with_sources]["choices"][0]["delta"], json!({}));
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["citations"], json!([1]));
}

/// The MiniLM folder `.ci/run` fetches (`REFBOOK_TEST_EMBED_MODEL`); without it the test
/// says what it skipped (and fails when `REFBOOK_TEST_REQUIRE_EVAL` is set).
fn embed_model() -> Option<String> {
    match std::env::var("REFBOOK_TEST_EMBED_MODEL") {
        Ok(folder) => Some(folder),
        Err(_) => {
            assert!(
                std::env::var_os("REFBOOK_TEST_REQUIRE_EVAL").is_none(),
                "REFBOOK_TEST_REQUIRE_EVAL is set but REFBOOK_TEST_EMBED_MODEL is not"
            );
            eprintln!("SKIPPED: no embedder (REFBOOK_TEST_EMBED_MODEL names a model folder)");
            None
        }
    }
}

async fn a_copy_is_indexed_in_the_background_with_a_real_embedder(db: TestDatabase) {
    let Some(model) = embed_model() else {
        return;
    };
    let app = spawn_app_with(db, |config| config.core.books.embed_model = Some(model)).await;
    let (me, _) = app.user_with_conversation("reader").await;
    let text: String = (1..=6)
        .map(|n| {
            format!(
                "Chapter {n}\n\nThe keeper of lighthouse {n} climbed the stairs at dusk. \
                 He lit the lamp and watched the ships pass the rocks. \
                 Storms came from the west in the autumn of year {n}.\n\n"
            )
        })
        .collect();
    let uploaded = put_text(&app, &me, SANTI, "text/plain", text.as_bytes()).await;
    assert_eq!(uploaded.status.as_u16(), 202, "{}", uploaded.text);
    assert_eq!(uploaded.body["status"], "indexing");
    assert_eq!(uploaded.body["error"], Value::Null);
    let text_path = format!("/api/books/{SANTI}/text/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let ready = loop {
        let status = app.get(&text_path, Some(&me)).await.assert_ok().clone();
        let progress = status["progress"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&progress), "{status}");
        if status["status"] == "ready" {
            break status;
        }
        assert_eq!(status["status"], "indexing", "{status}");
        assert!(
            std::time::Instant::now() < deadline,
            "still indexing: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(ready["progress"], 1.0);
    assert_eq!(ready["scope"], "mine");
    assert_eq!(ready["sections"].as_array().unwrap().len(), 6);
    let found = app
        .get(
            &format!("/api/books/{SANTI}/passages/?q=lighthouse%204%20lamp&limit=3"),
            Some(&me),
        )
        .await;
    let results = found.assert_ok()["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["section"]["title"], "Chapter 4", "{results:?}");
}

backend_tests!(
    a_copy_is_indexed_in_the_background_with_a_real_embedder,
    every_path_to_the_model_is_grounded_in_the_text,
    sources_and_citations_travel_with_the_reply,
    a_readers_copy_is_uploaded_searched_and_theirs_alone,
);
