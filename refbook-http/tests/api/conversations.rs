//! Personas, conversations, history, messages, regeneration and collections.

use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, TestDatabase};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, token, SANTI};

async fn personas_builtin_and_own(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = token(&app.register("alice").await).to_owned();
    let other = token(&app.register("bob").await).to_owned();
    let list = app.get("/api/personas/", Some(&t)).await;
    let list = list.assert_ok().as_array().unwrap().clone();
    let keys: Vec<_> = list.iter().map(|p| p["key"].clone()).collect();
    assert_eq!(keys, [json!("librarian"), json!("author")]);
    assert!(list
        .iter()
        .all(|p| p["builtin"] == true && p["created_at"].is_string() && p["id"].is_i64()));

    let created = app
        .post(
            "/api/personas/",
            Some(&t),
            json!({"name": "福尔摩斯", "description": "一位爱推理的侦探，说话简洁。"}),
        )
        .await;
    let persona = created.assert_ok().clone();
    assert_eq!(persona["builtin"], false);
    assert!(persona["key"].is_null());
    let pid = persona["id"].as_i64().unwrap();
    assert_eq!(
        app.get("/api/personas/", Some(&t))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        app.get("/api/personas/", Some(&other))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2,
        "own personas are private"
    );
    app.get(&format!("/api/personas/{pid}/"), Some(&t))
        .await
        .assert_ok();
    app.get(&format!("/api/personas/{pid}/"), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&format!("/api/personas/{pid}/"), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");

    let librarian = list[0]["id"].as_i64().unwrap();
    app.delete(&format!("/api/personas/{librarian}/"), Some(&t))
        .await
        .assert_error(400, "INVALID_PARAMS");
    for bad in [
        json!({"name": "", "description": "x"}),
        json!({"name": "x"}),
        json!({"name": "x", "description": "d".repeat(2001)}),
    ] {
        app.post("/api/personas/", Some(&t), bad)
            .await
            .assert_error(400, "INVALID_PARAMS");
    }
    app.get("/api/personas/abc/", Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");

    // A conversation with the custom persona: its description instructs the model.
    app.seed_book(&t).await;
    let conversation = app
        .post(
            "/api/conversations/",
            Some(&t),
            json!({"isbn": SANTI, "persona_id": pid}),
        )
        .await;
    let cid = conversation.assert_ok()["id"].as_i64().unwrap();
    assert_eq!(conversation.body["persona_id"], pid);
    app.post(
        &format!("/api/conversations/{cid}/messages/"),
        Some(&t),
        json!({"content": "你好"}),
    )
    .await
    .assert_ok();
    let system = app.llm.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("福尔摩斯") && system.contains("一位爱推理的侦探"),
        "{system}"
    );

    app.delete(&format!("/api/personas/{pid}/"), Some(&t))
        .await
        .assert_ok();
    let after = app
        .get(&format!("/api/conversations/{cid}/"), Some(&t))
        .await;
    assert!(
        after.assert_ok()["persona_id"].is_null(),
        "back to the default"
    );
    app.post(
        "/api/conversations/",
        Some(&t),
        json!({"isbn": SANTI, "persona_id": pid}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
}

async fn conversations_are_listed_updated_and_deleted(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = token(&app.register("carol").await).to_owned();
    app.seed_book(&t).await;
    let first = app
        .post(
            "/api/conversations/",
            Some(&t),
            json!({"isbn": "978-7-5366-9293-0"}),
        )
        .await;
    let first = first.assert_ok().clone();
    assert_eq!(first["title"], "三体", "defaults to the book title");
    assert_eq!(first["isbn"], SANTI);
    assert_eq!(
        first["book"],
        json!({"title": "三体", "author": "刘慈欣", "cover_url": format!("/api/books/{SANTI}/cover/")})
    );
    assert_eq!(first["message_count"], 0);
    assert!(first["last_message"].is_null());
    assert!(first["persona_id"].is_null());
    let second = app
        .post(
            "/api/conversations/",
            Some(&t),
            json!({"isbn": SANTI, "title": "  第二次  "}),
        )
        .await;
    assert_eq!(second.assert_ok()["title"], "第二次");
    let (a, b) = (
        first["id"].as_i64().unwrap(),
        second.body["id"].as_i64().unwrap(),
    );

    // Activity reorders the list.
    app.post(
        &format!("/api/conversations/{a}/messages/"),
        Some(&t),
        json!({"content": "问题"}),
    )
    .await
    .assert_ok();
    let list = app.get("/api/conversations/?limit=1", Some(&t)).await;
    let list = list.assert_ok();
    assert_eq!(list["count"], 2);
    assert_eq!(list["results"][0]["id"], a, "most recently active first");
    assert_eq!(list["results"][0]["message_count"], 2);
    assert_eq!(list["results"][0]["last_message"]["role"], "assistant");
    assert!(list["next"].as_str().unwrap().contains("offset=1"));
    let history = app.get("/api/user/history/", Some(&t)).await;
    assert_eq!(
        history.assert_ok()["results"][0]["id"],
        a,
        "history is the same list"
    );
    let filtered = app
        .get(&format!("/api/conversations/?isbn={SANTI}"), Some(&t))
        .await;
    assert_eq!(filtered.assert_ok()["count"], 2);
    assert_eq!(
        app.get("/api/conversations/?isbn=9787020002207", Some(&t))
            .await
            .body["count"],
        0
    );
    app.get("/api/conversations/?isbn=123", Some(&t))
        .await
        .assert_error(400, "INVALID_PARAMS");

    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/conversations/{b}/"),
            Some(&t),
            Some(json!({"title": "新标题"})),
        )
        .await;
    assert_eq!(renamed.assert_ok()["title"], "新标题");
    app.call(
        Method::PATCH,
        &format!("/api/conversations/{b}/"),
        Some(&t),
        Some(json!({"title": ""})),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
    app.call(
        Method::PATCH,
        &format!("/api/conversations/{b}/"),
        Some(&t),
        Some(json!({"persona_id": 99999})),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");

    app.delete(&format!("/api/user/history/{b}/"), Some(&t))
        .await
        .assert_ok();
    app.get(&format!("/api/conversations/{b}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&format!("/api/conversations/{a}/"), Some(&t))
        .await
        .assert_ok();
    assert_eq!(
        app.get("/api/conversations/", Some(&t)).await.body["count"],
        0
    );

    // Unknown books and bad ISBNs.
    app.post(
        "/api/conversations/",
        Some(&t),
        json!({"isbn": "9787536692931"}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
}

async fn history_can_be_imported_and_messages_deleted(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("dave").await;
    for (role, content) in [
        ("system", "导入的设定"),
        ("user", "旧问题"),
        ("assistant", "旧回答"),
    ] {
        let reply = app
            .post(
                &format!("/api/conversations/{id}/messages/"),
                Some(&t),
                json!({"role": role, "content": content, "generate": false}),
            )
            .await;
        let message = reply.assert_ok();
        assert_eq!(message["role"], role);
        assert_eq!(message["status"], "complete");
        assert!(message["usage"].is_null());
    }
    assert!(
        app.llm.requests().is_empty(),
        "importing never calls the model"
    );
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"role": "robot", "content": "x", "generate": false}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "   "}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": 5}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");

    let detail = app
        .get(&format!("/api/conversations/{id}/"), Some(&t))
        .await;
    let messages = detail.assert_ok()["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3);
    let mid = messages[0]["id"].as_i64().unwrap();
    app.delete(
        &format!("/api/conversations/{id}/messages/{mid}/"),
        Some(&t),
    )
    .await
    .assert_ok();
    app.delete(
        &format!("/api/conversations/{id}/messages/{mid}/"),
        Some(&t),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let detail = app
        .get(&format!("/api/conversations/{id}/"), Some(&t))
        .await;
    assert_eq!(detail.body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(detail.body["message_count"], 2);
}

async fn regenerate_replaces_the_last_reply(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("erin").await;
    app.post(
        &format!("/api/conversations/{id}/regenerate/"),
        Some(&t),
        json!({}),
    )
    .await
    .assert_error(400, "INVALID_PARAMS");
    app.llm.push(MockReply::answer(
        &[],
        &["第一版"],
        std::time::Duration::ZERO,
    ));
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "问题"}),
    )
    .await
    .assert_ok();
    app.llm.push(MockReply::answer(
        &[],
        &["第二版"],
        std::time::Duration::ZERO,
    ));
    let again = app
        .post(
            &format!("/api/conversations/{id}/regenerate/"),
            Some(&t),
            json!({}),
        )
        .await;
    let body = again.assert_ok();
    assert!(body["user_message"].is_null());
    assert_eq!(body["assistant_message"]["content"], "第二版");
    let detail = app
        .get(&format!("/api/conversations/{id}/"), Some(&t))
        .await;
    let messages = detail.body["messages"].as_array().unwrap();
    let contents: Vec<_> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["问题", "第二版"]);
    let last_request = app.llm.requests().last().unwrap().clone();
    let sent = last_request["messages"].as_array().unwrap();
    assert_eq!(
        sent.last().unwrap()["content"],
        "问题",
        "the same question, without the old answer"
    );
    assert_eq!(sent.len(), 2);
}

async fn collections_are_idempotent_and_private(db: TestDatabase) {
    let app = spawn_app(db).await;
    let t = token(&app.register("frank").await).to_owned();
    let other = token(&app.register("grace").await).to_owned();
    app.seed_book(&t).await;
    let added = app
        .post(
            "/api/user/collections/",
            Some(&t),
            json!({"isbn": "7536692935"}),
        )
        .await;
    let item = added.assert_ok().clone();
    assert_eq!(item["isbn"], SANTI);
    assert_eq!(item["book"]["title"], "三体");
    let again = app
        .post("/api/user/collections/", Some(&t), json!({"isbn": SANTI}))
        .await;
    assert_eq!(
        again.assert_ok()["created_at"],
        item["created_at"],
        "adding twice is not an error"
    );
    let list = app.get("/api/user/collections/", Some(&t)).await;
    let list = list.assert_ok();
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["book"]["author"], "刘慈欣");
    assert_eq!(
        app.get("/api/user/collections/", Some(&other)).await.body["count"],
        0
    );

    wiremock::Mock::given(wiremock::matchers::path_regex("^/"))
        .respond_with(
            wiremock::ResponseTemplate::new(404)
                .set_body_json(json!({"code": 6000, "msg": "book_not_found"})),
        )
        .with_priority(50)
        .mount(&app.books)
        .await;
    app.post(
        "/api/user/collections/",
        Some(&t),
        json!({"isbn": "9780262033848"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post("/api/user/collections/", Some(&t), json!({"isbn": "bad"}))
        .await
        .assert_error(400, "INVALID_PARAMS");
    app.delete(&format!("/api/user/collections/{SANTI}/"), Some(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&format!("/api/user/collections/{SANTI}/"), Some(&t))
        .await
        .assert_ok();
    app.delete(&format!("/api/user/collections/{SANTI}/"), Some(&t))
        .await
        .assert_error(404, "NOT_FOUND");
}

async fn deleting_an_account_removes_its_conversations(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("heidi").await;
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "问"}),
    )
    .await
    .assert_ok();
    app.post("/api/user/collections/", Some(&t), json!({"isbn": SANTI}))
        .await
        .assert_ok();
    app.call(
        Method::DELETE,
        "/api/user/",
        Some(&t),
        Some(json!({"password": crate::helpers::PASSWORD})),
    )
    .await
    .assert_ok();
    let fresh = token(&app.register("heidi").await).to_owned();
    assert_eq!(
        app.get("/api/conversations/", Some(&fresh)).await.body["count"],
        0
    );
    assert_eq!(
        app.get("/api/user/collections/", Some(&fresh)).await.body["count"],
        0
    );
    app.get(&format!("/api/conversations/{id}/"), Some(&fresh))
        .await
        .assert_error(404, "NOT_FOUND");
}

backend_tests!(
    personas_builtin_and_own,
    conversations_are_listed_updated_and_deleted,
    history_can_be_imported_and_messages_deleted,
    regenerate_replaces_the_last_reply,
    collections_are_idempotent_and_private,
    deleting_an_account_removes_its_conversations,
);
