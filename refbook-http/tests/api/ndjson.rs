//! NDJSON streaming (`Accept: application/x-ndjson`) on `messages/`, `stream/` and
//! `/api/chat/stream/`: the SSE chunks with their `"position"`, one a line, then
//! `{"done": true}`; resume by `?cursor=`; errors as in SSE.

use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, Step, TestDatabase};
use serde_json::{json, Value};

use crate::chat::slow_answer;
use crate::helpers::{spawn_app, Reply, TestApp, SANTI};

const NDJSON: &str = "application/x-ndjson";

/// Parses an NDJSON body strictly: every line one JSON object, the last `{"done": true}`.
fn parse(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with("{\"done\":true}\n"),
        "ends with done: {body:?}"
    );
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object a line"))
        .collect();
    assert_eq!(lines.iter().filter(|l| l["done"] == true).count(), 1);
    lines
        .into_iter()
        .filter(|l| l["done"] != true && l["keep_alive"] != true)
        .collect()
}

/// Asks in conversation `id` with `Accept: application/x-ndjson`.
async fn ask(app: &TestApp, token: &str, id: i64) -> Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/conversations/{id}/messages/")))
            .bearer_auth(token)
            .header("accept", NDJSON)
            .json(&json!({"content": "问"})),
    )
    .await
}

fn content(lines: &[Value]) -> String {
    lines
        .iter()
        .filter_map(|l| l["choices"][0]["delta"]["content"].as_str())
        .collect()
}

async fn ndjson_streams_on_every_streaming_route(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("liner").await;
    let (script, full) = slow_answer(6);
    app.llm.push(script);
    let asked = ask(&app, &t, id).await;
    assert_eq!(asked.header("content-type"), Some(NDJSON));
    let lines = parse(&asked.text);
    assert_eq!(content(&lines), full);
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions[0], 1);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let last = lines.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["status"], "complete");
    // Resume by cursor on stream/: exactly the rest.
    let at = positions[positions.len() / 2];
    let resumed = app
        .send(
            app.client
                .get(app.url(&format!("/api/conversations/{id}/stream/?cursor={at}")))
                .bearer_auth(&t)
                .header("accept", NDJSON),
        )
        .await;
    let rest = parse(&resumed.text);
    let seen: String = content(&lines[..=positions.iter().position(|p| *p == at).unwrap()]);
    assert_eq!(format!("{seen}{}", content(&rest)), full);
    assert!(rest.iter().all(|l| l["position"].as_u64().unwrap() > at));
    // The stateless endpoint.
    let stateless = app
        .send(
            app.client
                .post(app.url("/api/chat/stream/"))
                .bearer_auth(&t)
                .header("accept", NDJSON)
                .json(&json!({"isbn": SANTI, "messages": [{"role": "user", "content": "谁写的"}]})),
        )
        .await;
    assert_eq!(stateless.header("content-type"), Some(NDJSON));
    assert!(stateless.header("x-conversation-id").is_some());
    assert!(!content(&parse(&stateless.text)).is_empty());
}

async fn ndjson_reports_a_failure_mid_stream(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, id) = app.user_with_conversation("broken_liner").await;
    app.llm.push(MockReply::steps(vec![
        MockReply::content("已经说了"),
        MockReply::content("一部分"),
        // A corrupt chunk: the model fails mid-reply (deterministically; a broken
        // connection could race the data before it).
        Step::Raw("{\"choices\": [".into()),
        Step::Done,
    ]));
    let asked = ask(&app, &t, id).await;
    let lines = parse(&asked.text);
    assert_eq!(content(&lines), "已经说了一部分", "{}", asked.text);
    let error = lines.last().unwrap();
    assert_eq!(error["error"]["code"], "MODEL_ERROR");
    assert!(error["position"].as_u64().is_some());
    let finish = &lines[lines.len() - 2];
    assert_eq!(finish["status"], "failed");
}

backend_tests!(
    ndjson_streams_on_every_streaming_route,
    ndjson_reports_a_failure_mid_stream,
);
