//! Spoilers in the *answers*, not only in the passages: the gold set's books given to a
//! real model through the product's one answering step (the stateless chat, as every front
//! end asks), with a reader's progress at the middle of each book. Each book is asked the
//! questions about its ending and the gold questions whose answer lies past the middle;
//! an answer that holds a phrase only the second half of the book holds (the gold set's
//! `endings`, and those questions' quotes) that the question does not hold itself is a
//! leak, and so is a source past the progress.
//!
//! The same run without progress (`whole_book`) is the control: it shows how often the
//! model repeats those phrases when it may, so that "no leak" with progress is a finding
//! and not a model that never quotes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use refbook_core::book_text::prepare;
use refbook_core::books::{parse_catalog, CatalogFormat, Isbn};
use refbook_core::chat::ClientMessage;
use refbook_core::config::GuideMode;
use refbook_core::domain::{ReadingMark, Role, TextFormat, TextScope};
use refbook_core::{Config, Refbook};

use crate::reading::{isbn_for, ENDING_QUESTIONS};
use crate::retrieval::{book_markdown, endings, Question};

/// What one book's answers showed.
#[derive(Debug, Default, Clone)]
pub struct AnswerScores {
    /// Questions asked (about the ending, and gold questions answered past the middle).
    pub questions: usize,
    /// The phrases counted as the second half's.
    pub phrases: usize,
    /// Sources the answers were given.
    pub sources: usize,
    /// Of those, sources ending past the progress (must be 0 with progress).
    pub sources_past: usize,
    /// Answers holding a phrase of the second half that their question does not hold
    /// (must be 0 with progress).
    pub leaks: usize,
    /// The leaks: the question, then the phrase.
    pub leaked: Vec<(String, String)>,
    /// Characters of answer text, all answers together.
    pub answer_chars: usize,
    /// Prompt tokens, all answers together.
    pub prompt_tokens: i64,
    /// Seconds from each question to its stored answer, all answers together.
    pub seconds: f64,
}

/// Asks `books`' questions of the model `config` names (its database, embedder and guide
/// are set here: a throwaway SQLite file, keywords only, no guide), with the reader's
/// progress at each book's middle unless `whole_book`.
///
/// # Errors
///
/// When a text cannot be read, a gold phrase is not in its book's second half, or the
/// model or the database fails.
pub async fn spoilers_in_answers(
    mut config: Config,
    data: &Path,
    questions: &[Question],
    books: &[&str],
    whole_book: bool,
) -> Result<Vec<(String, AnswerScores)>> {
    // Every book's gold phrases checked before the model is asked anything.
    let endings = endings()?;
    let plans = books
        .iter()
        .map(|name| {
            plan(
                data,
                questions,
                name,
                endings.get(*name).cloned().unwrap_or_default(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let dir = tempfile::tempdir()?;
    config.database.url = format!("sqlite://{}", dir.path().join("answers.db").display());
    config.books.embed_model = Some("off".to_owned());
    config.books.guide = GuideMode::Off;
    config.books.sources = Vec::new();
    let refbook = Refbook::builder(config)
        .build()
        .await
        .map_err(|e| anyhow!("{e}: {}", e.cause_chain()))?;
    refbook
        .answering()
        .prepare_model()
        .await
        .map_err(|e| anyhow!("the model: {e}"))?;
    let reader = refbook
        .accounts()
        .local_user("eval.reader", "reader")
        .await?
        .id;
    let mut report = Vec::new();
    for (n, plan) in plans.into_iter().enumerate() {
        let isbn = isbn_for(n)?;
        catalogue(&refbook, &isbn, &plan.name).await?;
        let texts = refbook.books().texts();
        let added = texts
            .add(
                &isbn,
                TextScope::Library,
                TextFormat::Markdown,
                plan.markdown.into_bytes(),
            )
            .await?;
        if added.info.chars / 2 != plan.middle {
            bail!("{}: the stored text is not the text prepared", plan.name);
        }
        if !whole_book {
            texts
                .set_progress(&isbn, reader, ReadingMark::Position(plan.middle))
                .await?;
        }
        let mut scores = AnswerScores {
            phrases: plan.later.len(),
            ..AnswerScores::default()
        };
        for question in &plan.asked {
            let messages = vec![ClientMessage {
                role: Role::User,
                content: question.clone(),
            }];
            let asked_at = Instant::now();
            let (_, started) = refbook
                .answering()
                .stateless(reader, &isbn, messages, None)
                .await?;
            let answer = refbook.answering().stored_reply(&started).await?;
            scores.seconds += asked_at.elapsed().as_secs_f64();
            scores.prompt_tokens += answer.usage.map_or(0, |u| u.prompt_tokens);
            scores.questions += 1;
            scores.answer_chars += answer.content.chars().count();
            scores.sources += answer.sources.len();
            scores.sources_past += answer
                .sources
                .iter()
                .filter(|s| s.end > plan.middle)
                .count();
            // A phrase the question itself holds is the reader's, not a reveal.
            let leaked = plan.later.iter().find(|p| {
                first_at(question, p).is_none() && first_at(&answer.content, p).is_some()
            });
            if let Some(phrase) = leaked {
                scores.leaks += 1;
                scores.leaked.push((question.clone(), phrase.clone()));
            }
        }
        report.push((plan.name, scores));
    }
    refbook.close().await;
    Ok(report)
}

/// One book of the run, prepared before the model is asked anything.
struct Plan {
    name: String,
    markdown: String,
    /// The reader's progress: half the normalised text's characters.
    middle: usize,
    /// The phrases only the second half holds: the gold endings, and the quotes of the
    /// gold questions answered there.
    later: Vec<String>,
    /// The questions about the ending, then the gold questions answered past the middle.
    asked: Vec<String>,
}

/// Reads and prepares the book `name` and checks its gold phrases (`endings`, and the
/// quotes of its gold questions).
fn plan(data: &Path, questions: &[Question], name: &str, endings: Vec<String>) -> Result<Plan> {
    let markdown = book_markdown(data, name).with_context(|| format!("reading {name}"))?;
    let prepared = prepare(markdown.as_bytes(), TextFormat::Markdown)
        .map_err(|e| anyhow!("preparing {name}: {e}"))?;
    let middle = prepared.chars / 2;
    let mut later = Vec::new();
    for phrase in endings {
        match first_at(&prepared.text, &phrase) {
            Some(at) if at >= middle => later.push(phrase),
            Some(at) => bail!("{name}: the ending phrase {phrase:?} is already at {at}"),
            None => bail!("{name}: the ending phrase {phrase:?} is not in the text"),
        }
    }
    let later_questions: Vec<&Question> = questions
        .iter()
        .filter(|q| q.book == name)
        .filter(|q| first_at(&prepared.text, &q.quote).is_some_and(|at| at >= middle))
        .collect();
    later.extend(later_questions.iter().map(|q| q.quote.clone()));
    let asked = ENDING_QUESTIONS
        .iter()
        .map(|q| (*q).to_owned())
        .chain(later_questions.iter().map(|q| q.question.clone()))
        .collect();
    Ok(Plan {
        name: name.to_owned(),
        markdown,
        middle,
        later,
        asked,
    })
}

/// The character position of `phrase`'s first occurrence in `text`, ignoring case.
fn first_at(text: &str, phrase: &str) -> Option<usize> {
    let (text, phrase) = (text.to_lowercase(), phrase.to_lowercase());
    let byte = text.find(&phrase)?;
    Some(text[..byte].chars().count())
}

/// Puts the book `name` in the local catalogue under `isbn` (the answer's prompt names it).
async fn catalogue(refbook: &Refbook, isbn: &Isbn, name: &str) -> Result<()> {
    let titles: HashMap<&str, (&str, &str)> = HashMap::from([
        ("hamlet", ("Hamlet", "William Shakespeare")),
        ("macbeth", ("Macbeth", "William Shakespeare")),
        ("lunyu", ("论语", "孔子弟子")),
        ("mengzi", ("孟子", "孟子")),
        ("shijing", ("诗经", "佚名")),
    ]);
    let (title, author) = titles.get(name).copied().unwrap_or((name, ""));
    let csv = format!("isbn,title,authors\n{isbn},{title},{author}\n");
    let entries = parse_catalog(&csv, CatalogFormat::Csv).map_err(|p| anyhow!("{p:?}"))?;
    refbook.books().import_catalog(entries).await?;
    Ok(())
}

/// The scores of every book added up.
pub fn all(report: &[(String, AnswerScores)]) -> AnswerScores {
    report
        .iter()
        .fold(AnswerScores::default(), |mut all, (_, s)| {
            all.questions += s.questions;
            all.phrases += s.phrases;
            all.sources += s.sources;
            all.sources_past += s.sources_past;
            all.leaks += s.leaks;
            all.leaked.extend(s.leaked.iter().cloned());
            all.answer_chars += s.answer_chars;
            all.prompt_tokens += s.prompt_tokens;
            all.seconds += s.seconds;
            all
        })
}
