//! Chat answered by the local model (feature `local-model`) through the whole server: SSE
//! end to end, the stored reply equal to the streamed one, usage counted, stop. Needs
//! `REFBOOK_TEST_GGUF` (see refbook-core/tests/local_model.rs); skipped without it unless
//! `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1`.

use std::time::Duration;

use refbook_core::config::LlmProvider;
use refbook_core::testing::{TestBackend, TestDatabase};
use serde_json::json;

use crate::helpers::{last_chunk, parse_sse, spawn_app_with, texts, TestApp};

async fn local_app() -> Option<TestApp> {
    let path = refbook_core::testing::local_model_file()?
        .display()
        .to_string();
    let db = TestDatabase::create(TestBackend::Sqlite).await?;
    Some(
        spawn_app_with(db, |config| {
            config.core.llm.api_key = None;
            config.core.llm.provider = Some(LlmProvider::Local);
            config.core.local.model = Some(path);
            config.core.local.threads = 2;
            config.core.local.max_tokens = 48;
        })
        .await,
    )
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
