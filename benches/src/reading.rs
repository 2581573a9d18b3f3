//! The reading-alongside evaluation, through the product's own search
//! ([`BookTexts::find`] on a throwaway SQLite database, keywords only) on the gold set's
//! books:
//!
//! - **Spoilers.** With a reader's progress at the middle of each book, every gold question
//!   of that book and a few questions about the ending are searched; a passage past the
//!   progress, or one holding the quote of a gold question whose answer lies past it, is a
//!   leak.
//! - **Section questions.** For sections spread over each book, a question naming the
//!   section the way a reader would ("What happens in Act III, scene 2?", "第二篇讲了什么？",
//!   "《关雎》写的是什么？"); scored by whether the search took it as naming that section
//!   and by the share of the passages returned that come from it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use refbook_core::books::{BookTexts, Isbn, PassageQuery};
use refbook_core::config::BookSettings;
use refbook_core::domain::{ReadingMark, TextFormat, TextScope, TextSection, UserId};
use refbook_core::embed::EmbedderSource;
use refbook_core::store::{NewUser, SqlStore, Store};
use refbook_core::timestamp::Timestamp;

use crate::retrieval::{book_markdown, Question};

/// Questions about the ending, asked of every book with the progress at its middle.
pub(crate) const ENDING_QUESTIONS: &[&str] = &[
    "How does it end?",
    "Who dies at the end?",
    "What happens in the last act?",
    "结局是什么？",
    "最后一篇讲了什么？",
];

/// How many sections of each book are asked about by name.
const SECTIONS_PER_BOOK: usize = 12;

/// What the spoiler half measured.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpoilerScores {
    /// Questions searched.
    pub questions: usize,
    /// Passages returned.
    pub passages: usize,
    /// Passages ending past the reader's progress (must be 0).
    pub past_progress: usize,
    /// Gold questions whose answer lies past the progress.
    pub later_questions: usize,
    /// Of those, searches that returned the answer's quote (must be 0).
    pub later_quotes_found: usize,
}

/// What the section half measured.
#[derive(Debug, Default, Clone, Copy)]
pub struct SectionScores {
    /// Section questions asked.
    pub questions: usize,
    /// Questions the search took as naming exactly the section meant.
    pub recognised: usize,
    /// Passages returned for them.
    pub passages: usize,
    /// Of those, passages from the section meant (its scenes, for an act).
    pub in_section: usize,
}

impl SectionScores {
    /// The share of section questions recognised.
    pub fn recognised_share(&self) -> f64 {
        ratio(self.recognised, self.questions)
    }

    /// The share of returned passages from the named section.
    pub fn recall(&self) -> f64 {
        ratio(self.in_section, self.passages)
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 / whole as f64
}

/// Both halves, per book.
#[derive(Debug, Default, Clone)]
pub struct ReadingReport {
    /// Per book: its name, the spoiler and the section scores.
    pub books: Vec<(String, SpoilerScores, SectionScores)>,
}

impl ReadingReport {
    /// The spoiler scores of every book added up.
    pub fn spoilers(&self) -> SpoilerScores {
        self.books
            .iter()
            .fold(SpoilerScores::default(), |mut all, (_, s, _)| {
                all.questions += s.questions;
                all.passages += s.passages;
                all.past_progress += s.past_progress;
                all.later_questions += s.later_questions;
                all.later_quotes_found += s.later_quotes_found;
                all
            })
    }

    /// The section scores of every book added up.
    pub fn sections(&self) -> SectionScores {
        self.books
            .iter()
            .fold(SectionScores::default(), |mut all, (_, _, s)| {
                all.questions += s.questions;
                all.recognised += s.recognised;
                all.passages += s.passages;
                all.in_section += s.in_section;
                all
            })
    }
}

/// A valid ISBN-13 for the `n`th book of the evaluation.
pub(crate) fn isbn_for(n: usize) -> Result<Isbn> {
    let body = format!("978{:09}", n + 1);
    let sum: u32 = body
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(at, d)| if at % 2 == 0 { d } else { d * 3 })
        .sum();
    Isbn::parse(&format!("{body}{}", (10 - sum % 10) % 10)).map_err(|e| anyhow!("{e}"))
}

/// Runs the evaluation on the books `questions` ask about.
///
/// # Errors
///
/// When a text cannot be read or the throwaway database fails.
pub async fn evaluate_reading(data: &Path, questions: &[Question]) -> Result<ReadingReport> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("reading.db").display());
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await?);
    let texts = BookTexts::new(
        store.clone(),
        &BookSettings::default(),
        Arc::new(EmbedderSource::off()),
    );
    let reader = store
        .create_user(
            NewUser {
                username: Some("reader".to_owned()),
                email: None,
                nickname: "reader".to_owned(),
                password_hash: None,
                wechat_openid: None,
                wechat_unionid: None,
            },
            Timestamp::now(),
        )
        .await?
        .id;
    let mut names: Vec<&str> = questions.iter().map(|q| q.book.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut report = ReadingReport::default();
    for (n, name) in names.into_iter().enumerate() {
        let markdown = book_markdown(data, name).with_context(|| format!("reading {name}"))?;
        let isbn = isbn_for(n)?;
        let added = texts
            .add(
                &isbn,
                TextScope::Library,
                TextFormat::Markdown,
                markdown.into_bytes(),
            )
            .await?;
        let mine: Vec<&Question> = questions.iter().filter(|q| q.book == name).collect();
        let book = Book {
            texts: &texts,
            isbn: &isbn,
            reader,
        };
        let sections = texts.sections(&added.info).await?;
        let section_scores = book.sections(&sections).await?;
        let spoilers = book.spoilers(&mine, added.info.chars / 2).await?;
        report
            .books
            .push((name.to_owned(), spoilers, section_scores));
    }
    store.close().await;
    Ok(report)
}

/// One book of the evaluation, in the product's store.
struct Book<'a> {
    texts: &'a BookTexts,
    isbn: &'a Isbn,
    reader: UserId,
}

impl Book<'_> {
    async fn find(&self, question: &str, whole_book: bool) -> Result<refbook_core::books::Found> {
        self.texts
            .find(PassageQuery {
                isbn: self.isbn,
                reader: Some(self.reader),
                query: question,
                question,
                limit: 10,
                whole_book,
            })
            .await?
            .ok_or_else(|| anyhow!("the book has no text"))
    }

    async fn spoilers(&self, questions: &[&Question], position: usize) -> Result<SpoilerScores> {
        let mut scores = SpoilerScores::default();
        // Where each gold answer is: the first passage of the whole book holding its quote.
        let mut later = Vec::new();
        for q in questions {
            let whole = self.find(&q.question, true).await?;
            let at = whole
                .passages
                .iter()
                .filter(|p| p.text.contains(&q.quote))
                .map(|p| p.start)
                .min();
            if at.is_some_and(|at| at >= position) {
                later.push(q.quote.clone());
            }
        }
        self.texts
            .set_progress(self.isbn, self.reader, ReadingMark::Position(position))
            .await?;
        let asked = questions
            .iter()
            .map(|q| q.question.as_str())
            .chain(ENDING_QUESTIONS.iter().copied());
        for question in asked {
            let found = self.find(question, false).await?;
            scores.questions += 1;
            scores.passages += found.passages.len();
            scores.past_progress += found.passages.iter().filter(|p| p.end > position).count();
        }
        for q in questions.iter().filter(|q| later.contains(&q.quote)) {
            scores.later_questions += 1;
            let found = self.find(&q.question, false).await?;
            if found.passages.iter().any(|p| p.text.contains(&q.quote)) {
                scores.later_quotes_found += 1;
            }
        }
        self.texts.clear_progress(self.isbn, self.reader).await?;
        Ok(scores)
    }

    async fn sections(&self, sections: &[TextSection]) -> Result<SectionScores> {
        let mut scores = SectionScores::default();
        let asked = section_questions(sections);
        let step = asked.len().div_ceil(SECTIONS_PER_BOOK).max(1);
        for (question, meant) in asked.into_iter().step_by(step) {
            let found = self.find(&question, true).await?;
            scores.questions += 1;
            if found.named.len() == 1 && found.named[0].index as usize == meant.start {
                scores.recognised += 1;
            }
            scores.passages += found.passages.len();
            scores.in_section += found
                .passages
                .iter()
                .filter(|p| meant.contains(&(p.section.index as usize)))
                .count();
        }
        Ok(scores)
    }
}

/// A question naming each section with a body, as a reader would name it, with the
/// sections it means (an act: with its scenes).
fn section_questions(sections: &[TextSection]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut act: Option<(String, usize)> = None;
    let mut chapters = 0;
    for (at, section) in sections.iter().enumerate() {
        let title = section.title.trim();
        let body = section.end - section.start > title.chars().count() + 24;
        if let Some(number) = title.strip_prefix("ACT ") {
            let end = sections[at + 1..]
                .iter()
                .position(|s| s.title.starts_with("ACT "))
                .map_or(sections.len(), |after| at + 1 + after);
            out.push((format!("What happens in Act {number}?"), at..end));
            act = Some((number.to_owned(), at));
            continue;
        }
        if !body {
            continue;
        }
        if let Some(rest) = title.strip_prefix("SCENE ") {
            let scene = rest.split('.').next().unwrap_or(rest);
            if let Some((number, _)) = &act {
                out.push((
                    format!("Summarise Act {number}, scene {scene}."),
                    at..at + 1,
                ));
            }
        } else if title
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        {
            let name = title.rsplit('·').next().unwrap_or(title);
            out.push((format!("《{name}》讲了什么？"), at..at + 1));
            if title.ends_with('篇') {
                chapters += 1;
                out.push((format!("第{chapters}篇讲了什么？"), at..at + 1));
            }
        }
    }
    out
}
