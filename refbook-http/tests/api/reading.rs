//! Reading alongside over HTTP: `/api/books/{isbn}/progress/` (set, read back, cleared,
//! refused past the end, the reader's own), and the hard limit it puts on every path —
//! passages (unless `?all=true`), a conversation's answer, the stateless chat and `/v1`:
//! nothing past the progress reaches the model or the sources, and the prompt says where
//! the reader is. Questions naming a chapter get that chapter.

use http::Method;
use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use serde_json::{json, Value};

use crate::grounding::add_library_text;
use crate::helpers::{parse_sse, spawn_app, token, Sse, TestApp, SANTI};

fn progress_path() -> String {
    format!("/api/books/{SANTI}/progress/")
}

async fn put_progress(app: &TestApp, token: &str, body: Value) -> crate::helpers::Reply {
    app.call(Method::PUT, &progress_path(), Some(token), Some(body))
        .await
}

/// The system prompt of the model's newest request.
fn last_system(app: &TestApp) -> String {
    let requests = app.llm.requests();
    requests.last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The sections of the passages a search returned, in reading order.
fn sections(reply: &Value) -> Vec<String> {
    let mut titles: Vec<String> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["section"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles.dedup();
    titles
}

async fn progress_is_set_read_cleared_and_checked(db: TestDatabase) {
    let app = spawn_app(db).await;
    let me = token(&app.register("reader").await).to_owned();
    let other = token(&app.register("other").await).to_owned();
    app.seed_book(&me).await;

    // No text yet: nothing to read along.
    put_progress(&app, &me, json!({"section": 1}))
        .await
        .assert_error(404, "NOT_FOUND");
    add_library_text(&app).await;
    app.get(&progress_path(), Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");

    let set = put_progress(&app, &me, json!({"section": 1})).await;
    let body = set.assert_ok().clone();
    assert_eq!(body["section"], 1);
    assert_eq!(body["title"], "第二章 红岸");
    assert_eq!(body["set_by"], "section");
    let chars = body["chars"].as_u64().unwrap();
    let position = body["position"].as_u64().unwrap();
    assert!(position > 0 && position < chars, "{body}");
    assert!(body["share"].as_f64().unwrap() > 0.3);
    assert!(body["updated_at"].is_string());
    assert_eq!(
        app.get(&progress_path(), Some(&me)).await.assert_ok(),
        &body
    );
    app.get(&progress_path(), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");

    let by_position = put_progress(&app, &me, json!({"position": 10})).await;
    assert_eq!(by_position.assert_ok()["section"], 0);
    assert_eq!(by_position.assert_ok()["set_by"], "position");

    for (bad, field) in [
        (json!({"section": 3}), "section"),
        (json!({"position": chars + 1}), "position"),
        (json!({}), "section"),
        (json!({"section": 1, "position": 5}), "section"),
        (json!({"section": -1}), "section"),
        (json!({"section": "two"}), "section"),
    ] {
        let refused = put_progress(&app, &me, bad.clone()).await;
        refused.assert_error(400, "INVALID_PARAMS");
        assert_eq!(
            refused.body["details"]["field"], field,
            "{bad}: {}",
            refused.text
        );
    }
    assert_eq!(
        app.get(&progress_path(), Some(&me)).await.assert_ok()["position"],
        10,
        "a refused change leaves the progress as it was"
    );

    app.delete(&progress_path(), Some(&me)).await.assert_ok();
    app.get(&progress_path(), Some(&me))
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&progress_path(), Some(&me)).await.assert_ok();
    app.get(&progress_path(), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn nothing_past_the_progress_reaches_the_model_or_the_sources(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (me, id) = app.user_with_conversation("reader").await;
    let other = token(&app.register("other").await).to_owned();
    add_library_text(&app).await;
    let search = format!("/api/books/{SANTI}/passages/?q=%E6%B1%AA%E6%B7%BC&limit=10");
    let all = app.get(&search, Some(&me)).await;
    assert_eq!(
        sections(all.assert_ok()),
        ["第一章 科学边界", "第三章 三体游戏"]
    );

    // Read to the end of chapter one (section 0).
    put_progress(&app, &me, json!({"section": 0}))
        .await
        .assert_ok();
    let limited = app.get(&search, Some(&me)).await;
    assert_eq!(sections(limited.assert_ok()), ["第一章 科学边界"]);
    let whole = app.get(&format!("{search}&all=true"), Some(&me)).await;
    assert_eq!(sections(whole.assert_ok()), sections(all.assert_ok()));
    app.get(&format!("{search}&all=maybe"), Some(&me))
        .await
        .assert_error(400, "INVALID_PARAMS");
    let theirs = app.get(&search, Some(&other)).await;
    assert_eq!(sections(theirs.assert_ok()), sections(all.assert_ok()));

    // A conversation's answer: the later chapters are neither in the prompt nor in the sources.
    let reply = app.ask_streaming(&me, id, "汪淼进入了什么游戏？").await;
    let system = last_system(&app);
    assert!(!system.contains("三体游戏，看见了乱纪元"), "{system}");
    assert!(system.contains("读到了「第一章 科学边界」"), "{system}");
    assert!(system.contains("不要透露之后的情节"));
    for event in parse_sse(&reply.text) {
        if let Sse::Event(_, chunk) = event {
            for source in chunk["sources"].as_array().into_iter().flatten() {
                assert_eq!(source["section"]["index"], 0, "{source}");
            }
        }
    }

    // The stateless chat and the OpenAI face too.
    let stateless = app
        .post(
            "/api/chat/stream/",
            Some(&me),
            json!({"isbn": SANTI, "messages": [{"role": "user", "content": "叶文洁在红岸做什么？"}]}),
        )
        .await;
    assert_eq!(stateless.status.as_u16(), 200, "{}", stateless.text);
    let system = last_system(&app);
    assert!(!system.contains("红岸基地负责监听"), "{system}");
    let completion = app
        .post(
            "/v1/chat/completions",
            Some(&me),
            json!({"model": SANTI, "messages": [{"role": "user", "content": "What happens in chapter 3?"}]}),
        )
        .await;
    assert_eq!(completion.status.as_u16(), 200, "{}", completion.text);
    let system = last_system(&app);
    assert!(!system.contains("乱纪元"), "{system}");
    assert!(
        system.contains("asks about \"第三章 三体游戏\", which they have not read yet"),
        "{system}"
    );
    assert!(completion.body["sources"]
        .as_array()
        .is_none_or(|s| s.is_empty()));

    // Cleared: the whole book again.
    app.delete(&progress_path(), Some(&me)).await.assert_ok();
    app.post(
        "/api/chat/stream/",
        Some(&me),
        json!({"isbn": SANTI, "messages": [{"role": "user", "content": "叶文洁在红岸做什么？"}]}),
    )
    .await;
    assert!(last_system(&app).contains("红岸基地负责监听"));
}

async fn a_question_naming_a_chapter_is_answered_from_it(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (me, id) = app.user_with_conversation("reader").await;
    add_library_text(&app).await;
    app.ask_streaming(&me, id, "第二章讲了什么？").await;
    let system = last_system(&app);
    assert!(system.contains("这个问题问的是「第二章 红岸」"), "{system}");
    assert!(system.contains("[1] （第二章 红岸）"), "{system}");
    assert!(!system.contains("（第一章"), "{system}");
    assert!(!system.contains("（第三章"), "{system}");
    let search = app
        .get(
            &format!("/api/books/{SANTI}/passages/?q=summarise%20chapter%203"),
            Some(&me),
        )
        .await;
    assert_eq!(sections(search.assert_ok()), ["第三章 三体游戏"]);
}

backend_tests!(
    progress_is_set_read_cleared_and_checked,
    nothing_past_the_progress_reaches_the_model_or_the_sources,
    a_question_naming_a_chapter_is_answered_from_it,
);
