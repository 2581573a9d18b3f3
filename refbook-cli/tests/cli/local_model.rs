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
    let books = MockServer::start().await;
    Mock::given(path("/v2/book/isbn/9787536692930"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"title": "The Three-Body Problem", "author": ["Liu Cixin"]}),
        ))
        .mount(&books)
        .await;
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
