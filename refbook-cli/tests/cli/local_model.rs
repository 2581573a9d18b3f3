//! `refbook-cli chat` piped, answered by the local model (feature `local-model`) with no
//! API key anywhere. Needs `REFBOOK_TEST_GGUF` (see refbook-core/tests/local_model.rs);
//! skipped without it unless `REFBOOK_TEST_REQUIRE_LOCAL_MODEL=1`.

use refbook_core::testing::{TestBackend, TestDatabase};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::run::cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_chat_answers_every_line_from_the_local_model() {
    let Some(gguf) = refbook_core::testing::local_model_file() else {
        return;
    };
    let gguf = gguf.display().to_string();
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let books = three_body_books().await;
    // No key, no provider named: the local model file alone chooses the local model.
    let out = cli(
        db.url(),
        &books,
        &["chat", "--isbn", "9787536692930"],
        "Who wrote this book?\nWhat is it about?\n",
        &[
            ("REFBOOK_LOCAL_MODEL", gguf.as_str()),
            ("REFBOOK_LOCAL_THREADS", "2"),
            ("REFBOOK_LOCAL_MAX_TOKENS", "32"),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let answers: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        answers.len() >= 2,
        "an answer to each question: {:?}",
        out.stdout
    );
    assert!(!out.stdout.contains("<|im_"), "{}", out.stdout);
    assert!(
        !out.stderr.contains("REFBOOK_LLM_API_KEY"),
        "{}",
        out.stderr
    );
}

async fn three_body_books() -> MockServer {
    let books = MockServer::start().await;
    Mock::given(path("/v2/book/isbn/9787536692930"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"title": "The Three-Body Problem", "author": ["Liu Cixin"]}),
        ))
        .mount(&books)
        .await;
    books
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_chat_downloads_the_model_once_then_answers_offline() {
    let Some(gguf) = refbook_core::testing::local_model_file() else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let books = three_body_books().await;
    let hub = MockServer::start().await;
    let reference = refbook_core::testing::mount_model_hub(&hub, &gguf).await;
    let cache = tempfile::tempdir().unwrap();
    let cache_path = cache.path().display().to_string();
    let env = |endpoint: &str| -> Vec<(&'static str, String)> {
        vec![
            ("REFBOOK_LOCAL_MODEL", reference.clone()),
            ("REFBOOK_HF_ENDPOINT", endpoint.to_owned()),
            ("REFBOOK_LOCAL_MODEL_CACHE", cache_path.clone()),
            ("REFBOOK_LOCAL_THREADS", "2".to_owned()),
            ("REFBOOK_LOCAL_MAX_TOKENS", "16".to_owned()),
        ]
    };
    let run = |env: Vec<(&'static str, String)>| {
        let (db, books) = (db.url().to_owned(), &books);
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            cli(
                &db,
                books,
                &["chat", "--isbn", "9787536692930"],
                "Who wrote it?\n",
                &env,
            )
            .await
        }
    };

    let first = run(env(&hub.uri())).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("downloading the local model model.gguf"),
        "progress is shown: {}",
        first.stderr
    );
    assert!(!first.stdout.trim().is_empty(), "an answer");
    let downloads = |requests: &[wiremock::Request]| {
        requests
            .iter()
            .filter(|r| r.url.path() == refbook_core::testing::HUB_BYTES_PATH)
            .count()
    };
    assert_eq!(downloads(&hub.received_requests().await.unwrap()), 1);

    // The next run finds the file in the cache: the hub may as well be gone.
    let second = run(env(&refbook_core::testing::unreachable_hub())).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(!second.stderr.contains("downloading"), "{}", second.stderr);
    assert!(!second.stdout.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_with_no_model_file_says_how_to_provide_one() {
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let books = three_body_books().await;
    // No key, no model named: the default local model, whose hub cannot be reached.
    let out = cli(
        db.url(),
        &books,
        &["chat", "--isbn", "9787536692930"],
        "Who wrote it?\nAnd when?\n",
        &[],
    )
    .await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("set REFBOOK_LOCAL_MODEL to its path"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("qwen2.5-0.5b-instruct-q4_k_m.gguf"),
        "names the file it wanted: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[tokio::test]
async fn a_model_reference_that_cannot_work_is_named() {
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let books = three_body_books().await;
    let out = cli(
        db.url(),
        &books,
        &["chat", "--isbn", "9787536692930"],
        "hi\n",
        &[("REFBOOK_LOCAL_MODEL", "hf:only-an-owner/repo")],
    )
    .await;
    crate::run::assert_clean_failure(&out, "REFBOOK_LOCAL_MODEL");
    assert!(
        out.stderr.contains("hf:OWNER/REPO/FILE.gguf"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("database"), "{}", out.stderr);
}
