//! Hostile bytes: NUL and other control characters on every route that takes text, on
//! both backends (PostgreSQL cannot store NUL), and bodies of the wrong content type.

use refbook_core::testing::TestDatabase;
use refbook_core::{backend_tests, database_independent_tests};
use reqwest::Method;
use serde_json::json;

use std::time::Duration;

use refbook_core::testing::MockReply;

use crate::chat::{messages, slow_answer, wait_until_generating, wait_until_settled};
use crate::helpers::{last_chunk, parse_sse, spawn_app, spawn_app_with, texts, SANTI};

const NUL: &str = "bad\u{0}text";

async fn nul_and_controls_are_refused_on_every_route(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("hostile").await;
    let t = t.as_str();
    // Text that would be stored or looked up: 400 INVALID_PARAMS, never a 500.
    let cases = [
        (
            Method::POST,
            "/api/personas/".to_owned(),
            json!({"name": NUL, "description": "d"}),
        ),
        (
            Method::POST,
            "/api/personas/".to_owned(),
            json!({"name": "n", "description": "a\u{1b}[31m"}),
        ),
        (
            Method::POST,
            format!("/api/conversations/{id}/messages/"),
            json!({"content": NUL}),
        ),
        (
            Method::POST,
            format!("/api/conversations/{id}/messages/"),
            json!({"role": "assistant", "content": NUL, "generate": false}),
        ),
        (
            Method::POST,
            "/api/chat/stream/".to_owned(),
            json!({"isbn": SANTI, "messages": [{"role": "user", "content": NUL}]}),
        ),
        (
            Method::POST,
            "/api/conversations/".to_owned(),
            json!({"isbn": SANTI, "title": NUL}),
        ),
        (
            Method::PATCH,
            "/api/user/profile/".to_owned(),
            json!({"nickname": NUL}),
        ),
        (
            Method::POST,
            "/api/auth/login/wechat/".to_owned(),
            json!({"code": NUL}),
        ),
        (
            Method::POST,
            "/api/auth/register/".to_owned(),
            json!({"username": "nul_user", "password": "pass\u{0}word123"}),
        ),
    ];
    for (method, path, body) in cases {
        let reply = app.call(method.clone(), &path, Some(t), Some(body)).await;
        reply.assert_error(400, "INVALID_PARAMS");
    }
    let search = app
        .get(&format!("/api/books/?q={}", "a%00b"), Some(t))
        .await;
    search.assert_error(400, "INVALID_PARAMS");
    // Credentials with NUL are just bad credentials: the same 401 as any other.
    for identifier in ["hostile\u{0}", "hostile@example.com\u{0}"] {
        let login = app
            .post(
                "/api/auth/login/",
                None,
                json!({"username": identifier, "password": "whatever123"}),
            )
            .await;
        login.assert_error(401, "UNAUTHORIZED");
    }
    let form = app
        .send(
            app.client
                .post(app.url("/api/auth/token/"))
                .form(&[("username", "a@b.c\u{0}"), ("password", "x\u{0}yzzzzzz")]),
        )
        .await;
    form.assert_error(401, "UNAUTHORIZED");
    // Line breaks and tabs are text.
    let fine = app
        .post(
            &format!("/api/conversations/{id}/messages/"),
            Some(t),
            json!({"role": "user", "content": "第一行\r\n第二行\t!", "generate": false}),
        )
        .await;
    fine.assert_ok();
}

async fn json_routes_refuse_other_content_types(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("typed").await;
    for kind in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let reply = app
            .send(
                app.client
                    .post(app.url(&format!("/api/conversations/{id}/messages/")))
                    .bearer_auth(&t)
                    .header("content-type", kind)
                    .body(r#"{"content": "问"}"#),
            )
            .await;
        assert_eq!(reply.status, 415, "{kind}: {}", reply.text);
        assert_eq!(reply.body["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    // JSON with parameters or a +json type is JSON; no content type at all is read as JSON.
    for kind in [
        Some("application/json; charset=utf-8"),
        Some("application/merge-patch+json"),
        None,
    ] {
        let mut request = app
            .client
            .patch(app.url(&format!("/api/conversations/{id}/")))
            .bearer_auth(&t)
            .body(r#"{"title": "新标题"}"#);
        if let Some(kind) = kind {
            request = request.header("content-type", kind);
        }
        app.send(request).await.assert_ok();
    }
}

async fn the_global_cap_on_generations_answers_server_busy(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.chat.max_generations = 1).await;
    let (a, a_id) = app.user_with_conversation("first_in").await;
    let (script, _) = slow_answer(20);
    app.llm.push(script);
    let streaming = app.spawn_ask(&a, a_id, "问");
    wait_until_generating(&app, &a, a_id, 1).await;
    let (b, b_id) = app.user_with_conversation("second_in").await;
    let busy = app
        .post(
            &format!("/api/conversations/{b_id}/messages/"),
            Some(&b),
            json!({"content": "问"}),
        )
        .await;
    busy.assert_error(503, "SERVER_BUSY");
    assert!(busy.header("retry-after").is_some());
    assert!(messages(&app, &b, b_id).await.is_empty(), "nothing stored");
    streaming.await.unwrap();
    wait_until_settled(&app, &a, a_id).await;
    let later = app.ask_streaming(&b, b_id, "再问").await;
    assert_eq!(later.status, 200, "{}", later.text);
}

async fn a_reply_at_the_size_cap_ends_as_partial_length(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.llm.max_reply_bytes = 20).await;
    let (t, id) = app.user_with_conversation("capped").await;
    app.llm.push(MockReply::answer(
        &["想"],
        &["一二三", "四五六", "七八九", "十"],
        Duration::ZERO,
    ));
    let events = parse_sse(&app.ask_streaming(&t, id, "问").await.text);
    let (content, reasoning) = texts(&events);
    assert!(content.len() + reasoning.len() <= 20, "{content}");
    assert!("一二三四五六七八九十".starts_with(&content));
    let last = last_chunk(&events);
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["status"], "partial");
    let stored = wait_until_settled(&app, &t, id).await;
    assert_eq!(stored[1]["content"], content.as_str());
    assert_eq!(stored[1]["status"], "partial");
}

backend_tests!(
    the_global_cap_on_generations_answers_server_busy,
    a_reply_at_the_size_cap_ends_as_partial_length,
    nul_and_controls_are_refused_on_every_route,
);

database_independent_tests!(json_routes_refuse_other_content_types);
