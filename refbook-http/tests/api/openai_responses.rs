//! OpenAI's Responses API (`/v1/responses`), read raw here (the official Python SDK drives
//! it in `.ci/openai_sdk.py`): a response and its follow-up by `previous_response_id`
//! within one user, refused for another's; kept unless `store: false`; `GET` and
//! `DELETE`; the typed event stream; the same caps as every reply.

use std::time::Duration;

use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, Step, TestDatabase};
use serde_json::{json, Value};

use crate::chat::{slow_answer, wait_until_generating};
use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp, SANTI};
use crate::openai_face::reader_with_key;

async fn create(app: &TestApp, key: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.url("/v1/responses"))
            .bearer_auth(key)
            .json(&body),
    )
    .await
}

/// The text of a response object's output.
fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|item| item["content"].as_array().unwrap().iter())
        .map(|part| part["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_response_is_kept_and_followed_up(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "responder").await;
    let (_, other_key) = reader_with_key(&app, "snooper").await;

    app.llm.push(MockReply::answer(
        &["想"],
        &["刘慈欣", "写的。"],
        Duration::ZERO,
    ));
    let first = create(
        &app,
        &key,
        json!({"model": format!("{SANTI}@author"), "input": "三体是谁写的？",
               "instructions": "请用一句话回答。", "max_output_tokens": 100}),
    )
    .await;
    let response = first.assert_ok().clone();
    let id = response["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("resp_"), "{response}");
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], format!("{SANTI}@author"));
    assert_eq!(response["store"], true);
    assert_eq!(response["instructions"], "请用一句话回答。");
    assert_eq!(output_text(&response), "刘慈欣写的。");
    assert_eq!(response["usage"]["total_tokens"], 168);
    let sent = app.llm.requests().pop().unwrap();
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("《三体》的作者") && system.contains("请用一句话回答。"));

    // Kept: retrieved by its owner only.
    let got = app.get(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(output_text(got.assert_ok()), "刘慈欣写的。");
    assert_eq!(got.body["id"], id);
    let theirs = app
        .get(&format!("/v1/responses/{id}"), Some(&other_key))
        .await;
    assert_eq!(theirs.status.as_u16(), 404, "{}", theirs.text);

    // A follow-up carries the earlier exchange (not its instructions, as OpenAI's).
    app.llm
        .push(MockReply::answer(&[], &["《球状闪电》。"], Duration::ZERO));
    let second = create(
        &app,
        &key,
        json!({"model": SANTI, "input": [{"role": "user", "content": [{"type": "input_text", "text": "他还写了什么？"}]}],
               "previous_response_id": id}),
    )
    .await;
    let follow = second.assert_ok().clone();
    assert_eq!(follow["previous_response_id"], id);
    assert_eq!(output_text(&follow), "《球状闪电》。");
    let sent = app.llm.requests().pop().unwrap();
    let turns: Vec<(String, String)> = sent["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        turns,
        [
            ("user".to_owned(), "三体是谁写的？".to_owned()),
            ("assistant".to_owned(), "刘慈欣写的。".to_owned()),
            ("user".to_owned(), "他还写了什么？".to_owned()),
        ]
    );
    assert!(!sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("请用一句话回答。"));

    // Another user cannot follow it up; nothing reaches the model.
    let asked = app.llm.requests().len();
    let refused = create(
        &app,
        &other_key,
        json!({"model": SANTI, "input": "然后呢？", "previous_response_id": id}),
    )
    .await;
    assert_eq!(refused.status.as_u16(), 404, "{}", refused.text);
    assert_eq!(refused.body["error"]["param"], "previous_response_id");
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .is_ascii());
    assert_eq!(app.llm.requests().len(), asked);

    // store: false keeps nothing; DELETE forgets a kept one.
    app.llm
        .push(MockReply::answer(&[], &["好。"], Duration::ZERO));
    let unkept = create(
        &app,
        &key,
        json!({"model": SANTI, "input": "你好", "store": false}),
    )
    .await;
    let unkept_id = unkept.assert_ok()["id"].as_str().unwrap().to_owned();
    assert_eq!(unkept.body["store"], false);
    let gone = app
        .get(&format!("/v1/responses/{unkept_id}"), Some(&key))
        .await;
    assert_eq!(gone.status.as_u16(), 404);
    let deleted = app.delete(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(deleted.assert_ok()["deleted"], true);
    let gone = app.get(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(gone.status.as_u16(), 404);
    let again = app.delete(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(again.status.as_u16(), 404);
}

/// The `(event, data)` pairs of a Responses API stream (keep-alive comments skipped).
fn typed_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.is_empty() && !block.starts_with(':'))
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("event and data lines");
            let event = event
                .strip_prefix("event: ")
                .expect("an event line")
                .to_owned();
            let data: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("a data line")).unwrap();
            assert_eq!(data["type"], event.as_str());
            (event, data)
        })
        .collect()
}

async fn a_response_streams_typed_events(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "streamer").await;
    app.llm.push(MockReply::answer(
        &["想"],
        &["刘慈欣", "写的"],
        Duration::from_millis(5),
    ));
    let streamed = create(
        &app,
        &key,
        json!({"model": SANTI, "input": "谁写的？", "stream": true}),
    )
    .await;
    assert_eq!(streamed.status.as_u16(), 200, "{}", streamed.text);
    assert!(streamed
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let events = typed_events(&streamed.text);
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let sequence: Vec<u64> = events
        .iter()
        .map(|(_, data)| data["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(sequence, (0..10).collect::<Vec<u64>>());
    assert_eq!(events[4].1["delta"], "刘慈欣");
    assert_eq!(events[6].1["text"], "刘慈欣写的");
    let completed = &events[9].1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(output_text(completed), "刘慈欣写的");
    assert_eq!(completed["usage"]["total_tokens"], 168);
    // Kept before it was said complete.
    let id = completed["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(output_text(got.assert_ok()), "刘慈欣写的");

    // A model failing mid-stream: `error`, then `response.failed`; nothing kept.
    app.llm.push(MockReply::steps(vec![
        MockReply::content("说到一半"),
        Step::Raw("{\"choices\": [".into()),
        Step::Done,
    ]));
    let failed = create(
        &app,
        &key,
        json!({"model": SANTI, "input": "再说一次", "stream": true}),
    )
    .await;
    assert_eq!(failed.status.as_u16(), 200, "{}", failed.text);
    let events = typed_events(&failed.text);
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["response.output_text.delta", "error", "response.failed"]
    );
    let failure = &events[events.len() - 1].1["response"];
    assert_eq!(failure["status"], "failed");
    assert_eq!(failure["error"]["code"], "model_error");
    let id = failure["id"].as_str().unwrap();
    let got = app.get(&format!("/v1/responses/{id}"), Some(&key)).await;
    assert_eq!(got.status.as_u16(), 404, "a failed response is not kept");
}

async fn responses_share_the_one_cap_and_the_quota(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.chat.max_concurrent_generations = 1).await;
    let (t, key) = reader_with_key(&app, "capped_responses").await;
    let id = app.get("/api/conversations/", Some(&t)).await.assert_ok()["results"][0]["id"]
        .as_i64()
        .unwrap();
    let (script, _) = slow_answer(8);
    app.llm.push(script);
    let running = app.spawn_ask(&t, id, "一");
    wait_until_generating(&app, &t, id, 0).await;
    let busy = create(&app, &key, json!({"model": SANTI, "input": "二"})).await;
    assert_eq!(busy.status.as_u16(), 429, "{}", busy.text);
    assert_eq!(busy.body["error"]["type"], "rate_limit_error");
    assert!(running.await.unwrap().ends_with("data: [DONE]\n\n"));
    app.llm
        .push(MockReply::answer(&[], &["好"], Duration::ZERO));
    create(&app, &key, json!({"model": SANTI, "input": "三"}))
        .await
        .assert_ok();
    let profile = app.get("/api/user/profile/", Some(&t)).await;
    assert_eq!(profile.body["usage"]["used_tokens"], 2 * 168);
}

backend_tests!(
    a_response_is_kept_and_followed_up,
    a_response_streams_typed_events,
    responses_share_the_one_cap_and_the_quota,
);
