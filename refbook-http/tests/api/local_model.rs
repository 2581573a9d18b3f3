//! Chat answered by the local model (feature `local-model`) through the whole server: SSE
//! end to end, the stored reply equal to the streamed one, usage counted, stop. Needs
//! `REFBOOK_TEST_GGUF` (see refbook-core/tests/local_model.rs); skipped without it unless
//! `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1`.

use std::time::Duration;

use futures::StreamExt;

use refbook_core::config::LlmProvider;
use refbook_core::testing::{TestBackend, TestDatabase};
use serde_json::json;

use crate::helpers::{last_chunk, parse_sse, spawn_app_with, texts, TestApp, SANTI};

async fn local_app() -> Option<TestApp> {
    local_app_with(48, 30).await
}

async fn local_app_with(max_tokens: u64, queue_timeout_secs: u64) -> Option<TestApp> {
    let path = refbook_core::testing::local_model_file()?
        .display()
        .to_string();
    let db = TestDatabase::create(TestBackend::Sqlite).await?;
    Some(
        spawn_app_with(db, move |config| {
            config.core.llm.api_key = None;
            config.core.llm.provider = Some(LlmProvider::Local);
            config.core.local.model = Some(path);
            config.core.local.threads = 2;
            config.core.local.max_tokens = max_tokens;
            config.core.local.queue_timeout_secs = queue_timeout_secs;
        })
        .await,
    )
}

/// Waits until the server, which loads its model beside serving, answers a question
/// (one request to the model, from a user of its own).
async fn wait_until_ready(app: &TestApp) {
    let (token, id) = app.user_with_conversation("local_warmup").await;
    for _ in 0..120 {
        let warm = app.ask_streaming(&token, id, "Hello?").await;
        if warm.status == 200 {
            return;
        }
        warm.assert_error(503, "MODEL_ERROR");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the local model never got ready");
}

/// A metric's value in `/metrics`' text (the first sample whose name and labels start so).
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(sample))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_next_question_resumes_from_the_cache_and_metrics_say_so() {
    let Some(app) = local_app().await else {
        return;
    };
    wait_until_ready(&app).await;
    let (token, id) = app.user_with_conversation("local_regular").await;
    for question in ["Who wrote this book?", "What is it about?"] {
        let reply = app.ask_streaming(&token, id, question).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let text = app.get("/metrics", None).await.text;
    assert_eq!(metric(&text, "refbook_local_model_queue_started "), 3.0);
    assert_eq!(metric(&text, "refbook_local_model_queue_waiting "), 0.0);
    assert!(metric(&text, "refbook_local_model_queue_wait_seconds ") >= 0.0);
    // The second question's prompt begins with the first's (system prompt, the book's
    // facts, the first question): that part came from the cache.
    let cached = metric(&text, "refbook_local_model_prompt_tokens{kind=\"cached\"}");
    let computed = metric(
        &text,
        "refbook_local_model_prompt_tokens{kind=\"computed\"}",
    );
    assert!(cached >= 32.0, "{cached} cached, {computed} computed");
    assert!(metric(&text, "refbook_local_model_prefix_cache_bytes ") > 0.0);
    assert!(metric(&text, "refbook_local_model_prefix_cache_prompts ") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_that_would_wait_too_long_gets_server_busy() {
    let Some(app) = local_app_with(512, 1).await else {
        return;
    };
    let (counter, _) = app.user_with_conversation("local_counter").await;
    let (other, other_id) = app.user_with_conversation("local_other").await;
    wait_until_ready(&app).await;
    // A long answer (greedy, so it does not stop early by chance) holds the model for
    // seconds; it is under way once its first words arrive…
    let long = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&counter)
        .json(&json!({"model": SANTI, "temperature": 0, "stream": true,
            "messages": [{"role": "user", "content": "List one hundred facts about this book, numbered."}]}))
        .send()
        .await
        .expect("the long question");
    assert_eq!(long.status(), 200);
    let mut long = long.bytes_stream();
    let mut heard = String::new();
    while !heard.contains("\"content\":\"") || heard.matches("data: ").count() < 3 {
        let chunk = long
            .next()
            .await
            .expect("the long answer begins")
            .expect("bytes");
        heard.push_str(&String::from_utf8_lossy(&chunk));
    }
    // …so another reader's question waits its second in the queue, then is refused.
    let refused = app
        .ask_streaming(&other, other_id, "Who wrote this book?")
        .await;
    refused.assert_error(503, "SERVER_BUSY");
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    while let Some(chunk) = long.next().await {
        heard.push_str(&String::from_utf8_lossy(&chunk.expect("bytes")));
    }
    assert!(heard.contains("[DONE]"), "{heard}");
    // It ran to its cap: the model was held all along.
    assert!(heard.contains("\"finish_reason\":\"length\""), "{heard}");
    let text = app.get("/metrics", None).await.text;
    assert_eq!(metric(&text, "refbook_local_model_queue_refused "), 1.0);
    // Neither the refused question nor a reply was stored: the reader asks again.
    let detail = app
        .get(&format!("/api/conversations/{other_id}/"), Some(&other))
        .await;
    assert_eq!(detail.assert_ok()["messages"], json!([]));
    let reply = app
        .ask_streaming(&other, other_id, "Who wrote this book?")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_answers_over_sse_and_the_reply_is_stored() {
    let Some(app) = local_app().await else {
        return;
    };
    let (token, id) = app.user_with_conversation("local_reader").await;
    let reply = app.ask_streaming(&token, id, "Who wrote this book?").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = parse_sse(&reply.text);
    let (content, reasoning) = texts(&events);
    assert!(!content.trim().is_empty(), "an answer: {}", reply.text);
    assert!(reasoning.is_empty());
    let last = last_chunk(&events);
    assert!(
        last["usage"]["prompt_tokens"].as_i64().unwrap() > 50,
        "{last}"
    );
    // The model ends its turn (complete) or reaches the 48-token cap (partial, length).
    match last["choices"][0]["finish_reason"].as_str().unwrap() {
        "stop" => assert_eq!(last["status"], "complete"),
        "length" => {
            assert_eq!(last["status"], "partial");
            assert_eq!(last["usage"]["completion_tokens"], 48);
        }
        other => panic!("finish reason {other}"),
    }

    let detail = app
        .get(&format!("/api/conversations/{id}/"), Some(&token))
        .await;
    let stored = detail.assert_ok()["messages"][1].clone();
    assert_eq!(
        stored["content"].as_str().unwrap(),
        content,
        "stored as streamed"
    );
    assert_eq!(stored["usage"], last["usage"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_reply_stops_when_asked() {
    let Some(app) = local_app().await else {
        return;
    };
    let (token, id) = app.user_with_conversation("local_stopper").await;
    let asking = app.spawn_ask(&token, id, "Tell me a long story about this book.");
    // Stop as soon as the reply is running.
    let mut stopped = None;
    for _ in 0..200 {
        let reply = app
            .post(
                &format!("/api/conversations/{id}/stop/"),
                Some(&token),
                json!({}),
            )
            .await;
        if reply.status == 200 {
            stopped = Some(reply.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = stopped.expect("the reply was running and stopped");
    assert_eq!(stopped["status"], "partial");
    assert_eq!(stopped["finish_reason"], "cancelled");
    let body = tokio::time::timeout(Duration::from_secs(30), asking)
        .await
        .expect("the stream ends")
        .expect("task");
    let events = parse_sse(&body);
    assert_eq!(last_chunk(&events)["status"], "partial");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_downloads_its_model_at_start_with_progress_in_the_log() {
    let Some(gguf) = refbook_core::testing::local_model_file() else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let hub = wiremock::MockServer::start().await;
    let reference = refbook_core::testing::mount_model_hub(&hub, &gguf).await;
    let cache = tempfile::tempdir().unwrap();
    let cache_path = cache.path().display().to_string();
    let hub_url = hub.uri();
    // No key and no provider: the local model, fetched from the hub.
    let server = crate::helpers::start_binary(
        &[
            ("REFBOOK_DATABASE_URL", db.url()),
            ("REFBOOK_LOCAL_MODEL", &reference),
            ("REFBOOK_HF_ENDPOINT", &hub_url),
            ("REFBOOK_LOCAL_MODEL_CACHE", &cache_path),
            ("REFBOOK_LOCAL_THREADS", "2"),
            ("REFBOOK_LOCAL_MAX_TOKENS", "16"),
        ],
        None,
    )
    .await;
    // The server listens at once and gets the model ready beside it.
    let ready = async {
        loop {
            if server
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("model ready"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), ready)
        .await
        .unwrap_or_else(|_| panic!("ready: {:?}", server.log.lock().unwrap()));
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("downloading the local model model.gguf"),
        "{log}"
    );
    assert!(log.contains("local model download: 50%"), "{log}");
    assert!(log.contains("downloaded and verified"), "{log}");
    let cached = cache.path().join("huggingface/test/tiny/main/model.gguf");
    assert_eq!(
        std::fs::metadata(&cached).unwrap().len(),
        std::fs::metadata(&gguf).unwrap().len()
    );

    // Loaded from the cache, ready to answer (the answers themselves: the tests above).
    let ready_line = log.lines().find(|l| l.contains("model ready")).unwrap();
    assert!(ready_line.contains("\"model\":\"model\""), "{ready_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_refuses_demanded_tools_and_strict_schemas() {
    // The refusals come before the model is asked: no need to wait for it to load.
    let Some(app) = local_app().await else {
        return;
    };
    let (token, _) = app.user_with_conversation("local_tools").await;
    let ask = |body: serde_json::Value| {
        app.send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&token)
                .json(&body),
        )
    };
    let question = json!([{"role": "user", "content": "Who is Elizabeth?"}]);
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let demanded = ask(json!({"model": SANTI, "messages": question, "tools": tools,
        "tool_choice": "required"}))
    .await;
    assert_eq!(demanded.status.as_u16(), 400, "{}", demanded.text);
    assert_eq!(demanded.body["error"]["param"], "tool_choice");
    let strict = ask(
        json!({"model": SANTI, "messages": question, "response_format": {
        "type": "json_schema", "json_schema": {"name": "a", "strict": true, "schema": {}}}}),
    )
    .await;
    assert_eq!(
        strict.body["error"]["param"], "response_format",
        "{}",
        strict.text
    );
    let result = ask(json!({"model": SANTI, "messages": [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "Elizabeth Bennet"}]}))
    .await;
    assert_eq!(result.status.as_u16(), 400, "{}", result.text);
    assert_eq!(result.body["error"]["param"], "messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_object_from_the_local_model_is_json() {
    let Some(app) = local_app_with(200, 60).await else {
        return;
    };
    wait_until_ready(&app).await;
    let (token, _) = app.user_with_conversation("local_json").await;
    let answer = app
        .send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&token)
                .json(&json!({"model": SANTI, "temperature": 0, "response_format": {"type": "json_object"},
                    "messages": [{"role": "user", "content": "Give the book's title and author as JSON."}]})),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    let choice = &answer.body["choices"][0];
    let content = choice["message"]["content"].as_str().unwrap();
    // Kept to by the engine: one object, and the answer ends when it closes.
    assert_eq!(choice["finish_reason"], "stop", "{content}");
    let value: serde_json::Value =
        serde_json::from_str(content).unwrap_or_else(|err| panic!("{err}: {content:?}"));
    assert!(value.is_object(), "{content}");
}
