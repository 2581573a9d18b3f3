//! `refbook-eval-answers DATA GGUF [MAX_TOKENS [BOOK,…]]`: spoilers in the answers of a real model
//! (`refbook_benches::answer_spoilers`): the gold set's books, the reader's progress at
//! each book's middle, the questions about the ending and the gold questions answered past
//! it, through the product's answering step with the local model on `GGUF`; then the same
//! without progress, the control. DATA is laid out as `.ci/run` lays it out.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Result};
use refbook_benches::answer_spoilers::{all, spoilers_in_answers, AnswerScores};
use refbook_benches::retrieval::questions;
use refbook_core::{Config, LlmProvider};

const BOOKS: &[&str] = &["hamlet", "macbeth", "lunyu", "mengzi", "shijing"];

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || anyhow!("usage: refbook-eval-answers DATA_FOLDER GGUF [MAX_TOKENS [BOOK,…]]");
    let data = PathBuf::from(args.next().ok_or_else(usage)?);
    let gguf = args.next().ok_or_else(usage)?;
    let max_tokens: u64 = args.next().map_or(Ok(96), |t| t.parse())?;
    let chosen = args.next();
    let books: Vec<&str> = match &chosen {
        Some(list) => list.split(',').collect(),
        None => BOOKS.to_vec(),
    };
    let mut config = Config::default();
    config.llm.provider = Some(LlmProvider::Local);
    config.local.model = Some(gguf);
    config.local.threads = 2;
    config.local.max_tokens = max_tokens;
    let gold = questions()?;
    for whole_book in [false, true] {
        let started = Instant::now();
        let report = spoilers_in_answers(config.clone(), &data, &gold, &books, whole_book).await?;
        println!(
            "\n## {} ({:.0} s, answers up to {max_tokens} tokens)",
            if whole_book {
                "Control: no progress (the whole book may be used)"
            } else {
                "Progress at the middle of each book"
            },
            started.elapsed().as_secs_f64()
        );
        println!(
            "{:<10} {:>9} {:>7} {:>7} {:>12} {:>6} {:>12} {:>13} {:>9}",
            "book",
            "questions",
            "phrases",
            "sources",
            "sources_past",
            "leaks",
            "answer_chars",
            "prompt_tokens",
            "s/answer"
        );
        let total = all(&report);
        for (name, s) in report
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .chain([("all", &total)])
        {
            row(name, s);
        }
        for (question, phrase) in &total.leaked {
            println!("  leaked {phrase:?} answering {question:?}");
        }
    }
    Ok(())
}

fn row(name: &str, s: &AnswerScores) {
    println!(
        "{name:<10} {:>9} {:>7} {:>7} {:>12} {:>6} {:>12} {:>13} {:>9.1}",
        s.questions,
        s.phrases,
        s.sources,
        s.sources_past,
        s.leaks,
        s.answer_chars,
        s.prompt_tokens,
        s.seconds / s.questions.max(1) as f64
    );
}
