//! Spoilers in a real model's answers, in CI: *Hamlet* with the reader's progress at the
//! middle, asked about the ending and the gold questions answered past it through the
//! product's answering step with the local model (`REFBOOK_TEST_GGUF`): no source past
//! the progress, no answer holding a phrase only the second half holds. (The local model
//! reads a grounded prompt at some 40 tokens/s on two cores, about 20 s an answer, so CI
//! asks one book; `refbook-eval-answers` asks all five, and the control without progress
//! shows the same questions reaching the second half.) Needs `REFBOOK_EVAL_DATA` and `REFBOOK_TEST_GGUF`, which `.ci/run`
//! sets; without them the test says what it skipped (and fails when
//! `REFBOOK_TEST_REQUIRE_EVAL` or `REFBOOK_TEST_REQUIRE_LOCAL_MODEL` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use refbook_benches::answer_spoilers::{all, spoilers_in_answers};
use refbook_benches::retrieval::questions;
use refbook_core::{Config, LlmProvider};

const BOOKS: &[&str] = &["hamlet"];

fn data() -> Option<PathBuf> {
    let data = std::env::var_os("REFBOOK_EVAL_DATA").map(PathBuf::from);
    if data.is_none() {
        assert!(
            std::env::var_os("REFBOOK_TEST_REQUIRE_EVAL").is_none(),
            "REFBOOK_TEST_REQUIRE_EVAL is set but REFBOOK_EVAL_DATA is not"
        );
        eprintln!("SKIPPED: spoilers in answers need REFBOOK_EVAL_DATA (.ci/run sets it)");
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_at_the_middle_of_a_book_never_hold_its_second_half() {
    let (Some(data), Some(gguf)) = (data(), refbook_core::testing::local_model_file()) else {
        return;
    };
    let mut config = Config::default();
    config.llm.provider = Some(LlmProvider::Local);
    config.local.model = Some(gguf.display().to_string());
    config.local.threads = 2;
    config.local.max_tokens = 48;
    let gold = questions().unwrap();

    let report = spoilers_in_answers(config, &data, &gold, BOOKS, false)
        .await
        .unwrap();
    let at_middle = all(&report);
    assert_eq!(report.len(), BOOKS.len());
    for (book, scores) in &report {
        assert!(scores.questions >= 5, "{book}: {scores:?}");
        assert!(scores.phrases >= 2, "{book}: {scores:?}");
        assert!(scores.sources > 0, "{book}: grounded answers: {scores:?}");
        assert!(scores.answer_chars > 0, "{book}: answers: {scores:?}");
    }
    assert_eq!(at_middle.sources_past, 0, "{report:?}");
    assert_eq!(at_middle.leaks, 0, "leaked: {:?}", at_middle.leaked);
}
