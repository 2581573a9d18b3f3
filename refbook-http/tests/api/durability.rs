//! Durable replies: honest endings, stable positions across instances and restarts,
//! guards held in the database, small-context models, corrupt upstream chunks, and the
//! stateless endpoint under parallel first requests.

use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, Step, TestDatabase};
use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::{messages, slow_answer, wait_until_generating, wait_until_settled};
use crate::helpers::{
    error_event, last_chunk, parse_sse, spawn_app, spawn_app_with, texts, token, Sse, SANTI,
};

async fn endings_say_why_a_reply_ended(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("ending").await;
    // Finished by the model: stop / complete, stored with its reason.
    let done = app.ask_streaming(&t, id, "问").await;
    let events = parse_sse(&done.text);
    let last = last_chunk(&events);
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["status"], "complete");
    let stored = messages(&app, &t, id).await;
    assert_eq!(stored[1]["finish_reason"], "stop");
    assert!(stored[0]["finish_reason"].is_null(), "questions have none");

    // Cut by the model's token limit: length, still complete.
    let mut steps = vec![MockReply::content("截断的")];
    steps.push(Step::Data(
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
    ));
    steps.push(Step::Done);
    app.llm.push(MockReply::steps(steps));
    let cut = parse_sse(&app.ask_streaming(&t, id, "长").await.text);
    assert_eq!(last_chunk(&cut)["choices"][0]["finish_reason"], "length");
    assert_eq!(messages(&app, &t, id).await[3]["finish_reason"], "length");
}

async fn a_reply_cut_by_the_shutdown_grace_says_interrupted(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.http.shutdown_grace_secs = 0).await;
    let (t, id) = app.user_with_conversation("grace").await;
    let (script, full) = slow_answer(40);
    app.llm.push(script);
    let streaming = app.spawn_ask(&t, id, "问");
    wait_until_generating(&app, &t, id, 1).await;
    let other = app.sibling().await;
    let crate::helpers::TestApp { server, .. } = app;
    server.stop().await.unwrap();
    let events = parse_sse(&streaming.await.unwrap());
    let last = last_chunk(&events);
    assert_eq!(last["choices"][0]["finish_reason"], "interrupted");
    assert_eq!(last["status"], "partial");
    let kept = texts(&events).0;
    assert!(!kept.is_empty() && kept.len() < full.len());
    // Stored as it was announced.
    let shown = reqwest::Client::new()
        .get(format!("{}/api/conversations/{id}/", other.url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(shown["messages"][1]["status"], "partial");
    assert_eq!(shown["messages"][1]["finish_reason"], "interrupted");
    assert_eq!(shown["messages"][1]["content"], kept.as_str());
    other.stop().await.unwrap();
}

async fn a_corrupt_chunk_fails_the_reply_and_says_so(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("corrupt").await;
    app.llm.push(MockReply::steps(vec![
        MockReply::content("前半"),
        Step::Raw("{\"choices\": [{\"delta\": {\"content\": \"断".into()),
        MockReply::content("后半"),
        Step::Done,
    ]));
    let reply = app.ask_streaming(&t, id, "问").await;
    let events = parse_sse(&reply.text);
    let last = last_chunk(&events);
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    assert_eq!(last["status"], "failed");
    assert_eq!(error_event(&events).unwrap()["code"], "MODEL_ERROR");
    assert_eq!(texts(&events).0, "前半", "nothing after the corrupt chunk");
    let stored = wait_until_settled(&app, &t, id).await;
    assert_eq!(stored[1]["status"], "failed");
    assert_eq!(stored[1]["content"], "前半");
    assert_eq!(stored[1]["finish_reason"], "error");
}

async fn positions_hold_after_a_restart_and_on_another_instance(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("resume").await;
    let (script, full) = slow_answer(8);
    app.llm.push(script);
    let live = parse_sse(&app.ask_streaming(&t, id, "问").await.text);
    let positions: Vec<u64> = live
        .iter()
        .filter_map(|e| match e {
            Sse::Event(at, _) => Some(*at),
            _ => None,
        })
        .collect();
    // Another instance (or this one restarted: nothing of the reply is in its memory).
    let other = app.sibling().await;
    let base = other.url();
    for (i, at) in positions.iter().enumerate() {
        let resumed = app
            .send(
                app.client
                    .get(format!("{base}/api/conversations/{id}/stream/"))
                    .bearer_auth(&t)
                    .header("last-event-id", at.to_string()),
            )
            .await;
        let rest = parse_sse(&resumed.text);
        let (live_rest, live_reasoning) = texts(&live[i + 1..]);
        // Exactly the rest (text and reasoning), ending at the same final position.
        assert_eq!(
            texts(&rest),
            (live_rest.clone(), live_reasoning),
            "after {at}"
        );
        let ends = |events: &[Sse]| {
            events.iter().rev().find_map(|e| match e {
                Sse::Event(at, data) => Some((*at, data["status"].clone())),
                _ => None,
            })
        };
        assert_eq!(ends(&rest), ends(&live[i + 1..]), "after {at}");
        let polled = app
            .call_at(
                &base,
                Method::GET,
                &format!("/api/conversations/{id}/reply/?cursor={at}"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(
            polled.assert_ok()["delta"],
            live_rest.as_str(),
            "poll after {at}"
        );
        assert_eq!(polled.body["cursor"], *positions.last().unwrap());
    }
    assert_eq!(texts(&live).0, full);
    other.stop().await.unwrap();
}

async fn two_instances_share_the_conversation_lock_and_the_cap(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.chat.max_concurrent_generations = 2).await;
    let (t, id) = app.user_with_conversation("twins").await;
    // Long enough (about 5 s) to still run when the third question comes, on a loaded
    // machine too.
    let (script, full) = slow_answer(80);
    app.llm.push(script);
    let streaming = app.spawn_ask(&t, id, "问A");
    wait_until_generating(&app, &t, id, 1).await;
    // B starts while A generates: it must not settle A's live reply.
    let other = app.sibling().await;
    let base = other.url();
    let second = app
        .call_at(
            &base,
            Method::POST,
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            Some(json!({"content": "问B"})),
        )
        .await;
    second.assert_error(409, "CONFLICT");
    // The per-user cap counts replies on both instances.
    let other_conv = app
        .post("/api/conversations/", Some(&t), json!({"isbn": SANTI}))
        .await;
    let other_id = other_conv.assert_ok()["id"].as_i64().unwrap();
    let (slow, _) = slow_answer(40);
    app.llm.push(slow);
    let on_b = app.send(
        app.client
            .post(format!("{base}/api/conversations/{other_id}/messages/"))
            .bearer_auth(&t)
            .header("accept", "text/event-stream")
            .json(&json!({"content": "问C"})),
    );
    let third_conv = app
        .post("/api/conversations/", Some(&t), json!({"isbn": SANTI}))
        .await;
    let third_id = third_conv.assert_ok()["id"].as_i64().unwrap();
    let ((), capped) = tokio::join!(
        async {
            on_b.await;
        },
        async {
            wait_until_generating(&app, &t, other_id, 1).await;
            app.post(
                &format!("/api/conversations/{third_id}/messages/"),
                Some(&t),
                json!({"content": "问D"}),
            )
            .await
        }
    );
    capped.assert_error(429, "RATE_LIMIT");
    // B follows A's reply through the database until it ends, then sees it complete.
    let followed = app
        .send(
            app.client
                .get(format!("{base}/api/conversations/{id}/stream/"))
                .bearer_auth(&t),
        )
        .await;
    let events = parse_sse(&followed.text);
    assert_eq!(texts(&events).0, full);
    assert_eq!(last_chunk(&events)["status"], "complete");
    let body = streaming.await.unwrap();
    assert_eq!(texts(&parse_sse(&body)).0, full);
    let stored = wait_until_settled(&app, &t, id).await;
    assert_eq!(stored.len(), 2, "B's question was not stored");
    assert_eq!(stored[1]["status"], "complete");
    other.stop().await.unwrap();
}

async fn small_context_models_keep_conversations_alive(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.core.llm.context_tokens = 1200;
        c.core.llm.max_tokens = 400;
    })
    .await;
    let (t, id) = app.user_with_conversation("tiny").await;
    // A long earlier exchange, then a model whose context is smaller than we were told.
    let long = "很长的回答。".repeat(120);
    for (role, content) in [("user", "第一问"), ("assistant", long.as_str())] {
        app.post(
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            json!({"role": role, "content": content, "generate": false}),
        )
        .await
        .assert_ok();
    }
    app.llm.set_context_limit(Some(500));
    let reply = app.ask_streaming(&t, id, "第二问").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let requests = app.llm.requests();
    let sent = &requests[requests.len() - 1];
    assert_eq!(sent["max_tokens"], 400, "max_tokens is sent");
    let first_try = &requests[requests.len() - 2];
    assert!(
        sent.to_string().len() < first_try.to_string().len(),
        "the retry was trimmed harder"
    );
    let kept = sent["messages"].as_array().unwrap();
    assert_eq!(kept.last().unwrap()["content"], "第二问");
    // A question that cannot fit at all: 400, and no dangling turn is stored.
    let before = messages(&app, &t, id).await.len();
    let huge = app
        .post(
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            json!({"content": "问".repeat(1500)}),
        )
        .await;
    huge.assert_error(400, "INVALID_PARAMS");
    // A model that refuses even the trimmed prompt: 400 too, never "try again later".
    app.llm.set_context_limit(Some(5));
    let refused = app
        .post(
            &format!("/api/conversations/{id}/messages/"),
            Some(&t),
            json!({"content": "第三问"}),
        )
        .await;
    refused.assert_error(400, "INVALID_PARAMS");
    assert_eq!(messages(&app, &t, id).await.len(), before);
    app.llm.set_context_limit(None);
    app.ask_streaming(&t, id, "第四问").await;
    assert_eq!(messages(&app, &t, id).await.len(), before + 2);
}

async fn parallel_first_stateless_chats_make_one_conversation(db: TestDatabase) {
    let app = spawn_app(db).await;
    let payload = app.register("racer").await;
    let t = token(&payload).to_owned();
    app.seed_book(&t).await;
    let (script, _) = slow_answer(10);
    app.llm.set_fallback(script);
    let requests: Vec<_> = (0..10)
        .map(|i| {
            app.send(
                app.client
                    .post(app.url("/api/chat/stream/"))
                    .bearer_auth(&t)
                    .header("accept", "text/event-stream")
                    .json(&json!({"isbn": SANTI, "messages": [{"role": "user", "content": format!("问{i}")}]})),
            )
        })
        .collect();
    let answers = futures::future::join_all(requests).await;
    let accepted = answers.iter().filter(|a| a.status == 200).count();
    assert!(accepted >= 1);
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .filter_map(|a| a.header("x-conversation-id"))
        .collect();
    assert_eq!(ids.len(), 1, "one conversation: {ids:?}");
    let list = app.get("/api/conversations/", Some(&t)).await;
    assert_eq!(list.assert_ok()["count"], 1);
    let results = list.body["results"].as_array().unwrap();
    assert_eq!(results[0]["message_count"], 2 * accepted);
}

/// A model whose stream says one word and then panics (embedder code with a bug).
struct PanickingModel;

#[async_trait::async_trait]
impl refbook_core::llm::ChatModel for PanickingModel {
    fn model_name(&self) -> &str {
        "panicky"
    }

    async fn stream(
        &self,
        _request: refbook_core::llm::ChatRequest,
    ) -> Result<refbook_core::llm::ModelStream, refbook_core::llm::ModelError> {
        use futures::StreamExt as _;
        let events = futures::stream::iter(0..2).map(|i| {
            assert!(i == 0, "a model with a bug");
            Ok(refbook_core::llm::ModelEvent::Content("半".into()))
        });
        Ok(Box::pin(events))
    }
}

async fn panics_in_embedder_code_end_the_reply_and_free_the_conversation(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("panic").await;
    // An observer that panics after every reply.
    let observed = refbook_core::Refbook::builder(app.config.core.clone())
        .generation_observer(std::sync::Arc::new(|_| panic!("an observer with a bug")))
        .build()
        .await
        .unwrap();
    let server = refbook_http::RunningServer::start(observed, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ask = |content: &'static str, base: String| {
        let request = app
            .client
            .post(format!("{base}/api/conversations/{id}/messages/"))
            .bearer_auth(&t)
            .header("accept", "text/event-stream")
            .json(&json!({ "content": content }));
        app.send(request)
    };
    for round in ["一", "二"] {
        let reply = ask(round, server.url()).await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.text);
        let events = parse_sse(&reply.text);
        assert_eq!(last_chunk(&events)["status"], "complete");
    }
    server.stop().await.unwrap();
    // A model stream that panics mid-reply: the reply ends as failed, listeners wake.
    let broken = refbook_core::Refbook::builder(app.config.core.clone())
        .model(std::sync::Arc::new(PanickingModel))
        .build()
        .await
        .unwrap();
    let server = refbook_http::RunningServer::start(broken, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let reply = ask("三", server.url()).await;
    let events = parse_sse(&reply.text);
    assert_eq!(last_chunk(&events)["status"], "failed");
    assert!(error_event(&events).is_some());
    let stored = wait_until_settled(&app, &t, id).await;
    assert_eq!(stored.last().unwrap()["status"], "failed");
    assert_eq!(stored.last().unwrap()["content"], "半");
    // The conversation is free again.
    let again = ask("四", app.server.url()).await;
    assert_eq!(again.status, 200, "{}", again.text);
    server.stop().await.unwrap();
}

backend_tests!(
    a_reply_cut_by_the_shutdown_grace_says_interrupted,
    panics_in_embedder_code_end_the_reply_and_free_the_conversation,
    endings_say_why_a_reply_ended,
    a_corrupt_chunk_fails_the_reply_and_says_so,
    positions_hold_after_a_restart_and_on_another_instance,
    two_instances_share_the_conversation_lock_and_the_cap,
    small_context_models_keep_conversations_alive,
    parallel_first_stateless_chats_make_one_conversation,
);
