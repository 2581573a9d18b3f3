//! `refbook-eval DATA [EMBED_MODEL_FOLDER]`: the retrieval evaluation (see
//! `refbook_benches::retrieval`): recall@5 and MRR@10 by language for BM25 alone, the
//! embedder alone, the product's ranking, and plain fusion at several weights (`zh-o`: the
//! Chinese questions asked in the other script); and the
//! embedder's throughput on the books' chunks; then the reading-alongside evaluation
//! (`refbook_benches::reading`: spoilers with the progress at each book's middle, and
//! questions naming sections).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Result};
use refbook_benches::reading::evaluate_reading;
use refbook_benches::retrieval::{
    embed_books, evaluate, in_other_script, load_books, questions, Mode,
};
use refbook_core::embed::{BertEmbedder, Embedder};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow!("usage: refbook-eval DATA_FOLDER [EMBED_MODEL_FOLDER]"))?,
    );
    let all = questions()?;
    let mut books = load_books(&data, &all)?;
    let chunks: usize = books.values().map(|b| b.chunks.len()).sum();
    let chars: usize = books
        .values()
        .flat_map(|b| &b.chunks)
        .map(|c| c.chars().count())
        .sum();
    println!(
        "{} questions over {} books: {chunks} chunks, {chars} characters",
        all.len(),
        books.len()
    );
    let embedder = match args.next() {
        Some(folder) => {
            let folder = PathBuf::from(folder);
            let id = folder.display().to_string();
            Some(BertEmbedder::load(&folder, id).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };
    let embedder = embedder.as_ref().map(|e| e as &dyn Embedder);
    if let Some(embedder) = embedder {
        let started = Instant::now();
        let embedded = embed_books(&mut books, embedder)?;
        let secs = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let (per_chunk, per_char) = (embedded as f64 / secs, chars as f64 / secs);
        println!("embedded {embedded} chunks in {secs:.1} s: {per_chunk:.1} chunks/s, {per_char:.0} chars/s");
    }
    if let Some(embedder) = embedder {
        // What a question's vector adds to a search (the keyword search itself: criterion's
        // book_text bench).
        let mut times: Vec<f64> = all
            .iter()
            .map(|q| {
                let started = Instant::now();
                let _ = embedder.known_share(&q.question);
                let _ = embedder.embed(&[q.question.as_str()]);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "a question's vector: p50 {:.1} ms, p99 {:.1} ms ({} questions)",
            at(0.5),
            at(0.99),
            times.len()
        );
    }
    let mut modes = vec![("bm25", Mode::Keyword)];
    if embedder.is_some() {
        modes.extend([
            ("dense", Mode::Meaning),
            ("product", Mode::Product),
            ("rrf w=0.1", Mode::Fused(0.1)),
            ("rrf w=0.15", Mode::Fused(0.15)),
            ("rrf w=0.25", Mode::Fused(0.25)),
            ("rrf w=0.5", Mode::Fused(0.5)),
            ("rrf w=1", Mode::Fused(1.0)),
        ]);
    }
    println!(
        "{:<12} {:>4} {:>5} {:>9} {:>7}",
        "ranking", "lang", "n", "recall@5", "MRR@10"
    );
    let other_script = in_other_script(&all);
    for (name, mode) in modes {
        for language in ["en", "zh", "zh-o", "all"] {
            // zh-o: the Chinese questions in the other script.
            let subset: Vec<_> = if language == "zh-o" {
                other_script.iter().collect()
            } else {
                all.iter()
                    .filter(|q| language == "all" || q.language() == language)
                    .collect()
            };
            let s = evaluate(&books, &subset, mode, embedder);
            println!(
                "{name:<12} {language:>4} {:>5} {:>9.3} {:>7.3}",
                s.questions, s.recall_at_5, s.mrr_at_10
            );
        }
    }
    print_reading(&data, &all)
}

/// The reading-alongside evaluation (`refbook_benches::reading`), per book and in all.
fn print_reading(
    data: &std::path::Path,
    all: &[refbook_benches::retrieval::Question],
) -> Result<()> {
    let report = tokio::runtime::Runtime::new()?.block_on(evaluate_reading(data, all))?;
    println!(
        "\n{:<10} {:>9} {:>9} {:>12} {:>13} {:>9} {:>11} {:>10}",
        "reading",
        "questions",
        "passages",
        "past_progress",
        "later_quotes",
        "sections",
        "recognised",
        "in_section"
    );
    let rows = report
        .books
        .iter()
        .map(|(name, s, c)| (name.as_str(), *s, *c))
        .chain([("all", report.spoilers(), report.sections())]);
    for (name, s, c) in rows {
        println!(
            "{name:<10} {:>9} {:>9} {:>12} {:>7}/{:<5} {:>9} {:>11.3} {:>10.3}",
            s.questions,
            s.passages,
            s.past_progress,
            s.later_quotes_found,
            s.later_questions,
            c.questions,
            c.recognised_share(),
            c.recall()
        );
    }
    Ok(())
}
