//! [`Guides`]: each book's guide (深度解析) — a summary of every section and of the whole
//! book, built in the background with the configured model once the book's text is ready
//! (`build.rs`), stored with the text (the library's, or a reader's own copy) and rebuilt
//! when the text changes; served cut at the reader's progress, and put beside passages in
//! the prompt of broad questions ("what is this book about?") and of questions naming a
//! section.

mod build;
mod prompts;

use std::sync::Arc;

use regex::Regex;
use serde::Serialize;
use tokio::sync::Notify;

pub use build::GuideSettings;

use crate::background;
use crate::book_text::fold_script;
use crate::books::Books;
use crate::config::{BookSettings, GuideMode};
use crate::domain::{BookTextInfo, GuideState, Isbn, SectionRef, UserId};
use crate::error::Result;
use crate::llm::ChatModel;
use crate::store::Store;
use crate::tokens::estimate_tokens;
use build::{has_body, Builder};

/// Where a guide is, as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuideStatus {
    /// Being written (the summaries done so far are served).
    Building,
    /// Written.
    Ready,
    /// The model failed on it (what was written is served).
    Failed,
    /// Guides are off on this server (or it has no model).
    Off,
}

/// One section's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSummary {
    /// The section's index.
    pub index: u32,
    /// Its title.
    pub title: String,
    /// Its summary.
    pub summary: String,
}

/// The whole book's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookSummary {
    /// The summary: themes, main people and how they change, structure.
    pub summary: String,
}

/// A book's guide as one reader may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuideView {
    /// Where the guide is.
    pub status: GuideStatus,
    /// The whole book's summary: `None` while it is not written, and for a reader whose
    /// progress stops before the end (it is built from every section).
    pub book: Option<BookSummary>,
    /// The sections' summaries up to the reader's progress, in reading order.
    pub sections: Vec<SectionSummary>,
    /// Sections summarised so far, and sections to summarise (whole text).
    pub done: usize,
    /// Sections with a body (the ones a guide summarises).
    pub total: usize,
    /// Why it failed.
    pub error: Option<String>,
}

/// Books' guides.
pub struct Guides {
    store: Arc<dyn Store>,
    books: Arc<Books>,
    enabled: bool,
    builder: Arc<Builder>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Guides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guides")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// The guide takes at most this fraction (1/N) of a prompt's token budget (the passages
/// have what is left of their half).
const GUIDE_SHARE: i64 = 6;

impl Guides {
    /// The guides over `store`, built with `model` (whose context window is
    /// `context_tokens`) when `config` says `auto` and `has_model` (in the background on
    /// the current runtime, if any).
    pub fn start(
        store: Arc<dyn Store>,
        books: Arc<Books>,
        model: (Arc<dyn ChatModel>, u64),
        config: &BookSettings,
        has_model: bool,
        settings: GuideSettings,
    ) -> Self {
        let (model, context_tokens) = model;
        let enabled = config.guide == GuideMode::Auto && has_model;
        let builder = Arc::new(Builder {
            store: store.clone(),
            model,
            budget: config.guide_token_budget,
            context: context_tokens,
            settings,
        });
        let wake = Arc::new(Notify::new());
        if enabled {
            background::spawn(&builder, wake.clone());
        }
        Self {
            store,
            books,
            enabled,
            builder,
            wake,
        }
    }

    /// Whether guides are built on this server.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Looks for guides to build now (a text became ready).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Builds every guide with work left, in the caller's task (the CLI, with a progress
    /// bar: `progress` hears `(text id, sections summarised, sections)`); nothing when
    /// guides are off.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails (a model's failure marks the guide `failed`).
    pub async fn build_now(
        &self,
        progress: &(dyn Fn(i64, usize, usize) + Send + Sync),
    ) -> Result<()> {
        if self.enabled {
            self.builder.build_all(progress).await?;
        }
        Ok(())
    }

    /// Where the guide of `text` is: its status, the sections summarised and the
    /// sections to summarise (what `GET …/text/` shows).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn progress_of(&self, text: &BookTextInfo) -> Result<(GuideStatus, usize, usize)> {
        let total = self
            .books
            .texts()
            .sections(text)
            .await?
            .iter()
            .filter(|s| has_body(s))
            .count();
        if !self.enabled {
            return Ok((GuideStatus::Off, 0, total));
        }
        let record = self.store.guide(text.id).await?;
        let done = record
            .entries
            .iter()
            .filter(|e| e.section.is_some())
            .count();
        Ok((status_of(record.state), done, total))
    }

    /// The guide of the text `reader` sees (their copy, else the library's), cut at their
    /// progress; `None` when the book has no text.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn for_reader(
        &self,
        isbn: &Isbn,
        reader: Option<UserId>,
    ) -> Result<Option<GuideView>> {
        let texts = self.books.texts();
        let Some(text) = texts.seen_by(isbn, reader).await? else {
            return Ok(None);
        };
        let sections = texts.sections(&text).await?;
        let total = sections.iter().filter(|s| has_body(s)).count();
        if !self.enabled {
            return Ok(Some(GuideView {
                status: GuideStatus::Off,
                book: None,
                sections: Vec::new(),
                done: 0,
                total,
                error: None,
            }));
        }
        let record = self.store.guide(text.id).await?;
        if matches!(record.state, None | Some(GuideState::Building)) {
            // Someone wants it: look for work now rather than at the next poll.
            self.wake();
        }
        let read_to = match reader {
            Some(reader) => texts.read_so_far(&text, reader).await?.map(|p| p.position),
            None => None,
        };
        let mut view = GuideView {
            status: status_of(record.state),
            book: None,
            sections: Vec::new(),
            done: record
                .entries
                .iter()
                .filter(|e| e.section.is_some())
                .count(),
            total,
            error: record.error,
        };
        for entry in record.entries {
            match entry.section {
                None if read_to.is_none() => {
                    view.book = Some(BookSummary {
                        summary: entry.summary,
                    });
                }
                None => {}
                Some(index) => {
                    let Some(section) = sections.get(index as usize) else {
                        continue;
                    };
                    if read_to.is_some_and(|at| section.end > at) {
                        continue;
                    }
                    view.sections.push(SectionSummary {
                        index,
                        title: section.title.clone(),
                        summary: entry.summary,
                    });
                }
            }
        }
        Ok(Some(view))
    }

    /// What of the guide goes in the prompt of `question`, within `allowance` estimated
    /// tokens: the whole book's summary (when the reader may see it) and — for a question
    /// naming sections — their summaries, or — for a broad question — every section's
    /// summary up to the reader's progress (as many as fit, spread over the book).
    pub(crate) async fn for_prompt(
        &self,
        isbn: &Isbn,
        reader: UserId,
        question: &str,
        named: &[SectionRef],
        allowance: i64,
    ) -> Result<Option<GuideView>> {
        if !self.enabled {
            return Ok(None);
        }
        let broad = is_broad(question);
        if !broad && named.is_empty() {
            return Ok(None);
        }
        let Some(mut view) = self.for_reader(isbn, Some(reader)).await? else {
            return Ok(None);
        };
        if !broad {
            view.sections
                .retain(|s| named.iter().any(|n| n.index == s.index));
        }
        let room = allowance / GUIDE_SHARE;
        let book_cost = view
            .book
            .as_ref()
            .map_or(0, |b| estimate_tokens(&b.summary));
        let each: i64 = view
            .sections
            .iter()
            .map(|s| estimate_tokens(&s.summary) + estimate_tokens(&s.title))
            .max()
            .unwrap_or(1)
            .max(1);
        let fits = usize::try_from(((room - book_cost) / each).max(0)).unwrap_or(0);
        if view.sections.len() > fits {
            let step = view.sections.len().div_ceil(fits.max(1));
            view.sections = view.sections.into_iter().step_by(step).take(fits).collect();
        }
        if view.book.is_none() && view.sections.is_empty() {
            return Ok(None);
        }
        Ok(Some(view))
    }
}

/// A stored state as served (not started yet is building: it starts at once).
fn status_of(state: Option<GuideState>) -> GuideStatus {
    match state {
        None | Some(GuideState::Building) => GuideStatus::Building,
        Some(GuideState::Ready) => GuideStatus::Ready,
        Some(GuideState::Failed) => GuideStatus::Failed,
    }
}

/// Whether a question is about the whole book rather than a moment in it (asked in either
/// Chinese script: traditional characters are folded into simplified ones first).
fn is_broad(question: &str) -> bool {
    static BROAD: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    BROAD
        .get_or_init(|| {
            Regex::new(concat!(
                r"(?i)(这本书|本书|全书|整本书|这部|小说).{0,6}(讲|写|说|关于|主题|主旨)",
                r"|主题|主旨|中心思想|主要人物|人物关系|人物.{0,4}(变化|成长)|全书结构|故事梗概|梗概|概括全书|总结全书",
                r"|what.{0,12}\b(book|novel|play|story)\b.{0,8}\babout\b|\bthemes?\b|\bmain characters?\b",
                r"|\boverall\b|\bwhole (book|story|play|novel)\b|\bsummar(y|ise|ize) (of )?(the|this) (book|novel|play|story)\b",
                r"|\bhow does .{1,40} change\b|\bstructure of\b|\bplot\b"
            ))
            .ok()
        })
        .as_ref()
        .is_some_and(|broad| broad.is_match(&fold_script(question)))
}

#[cfg(test)]
mod tests {
    use super::is_broad;

    #[test]
    fn broad_questions_are_told_from_questions_about_a_moment() {
        for broad in [
            "这本书讲了什么？",
            "這本書講了什麼？",
            "全书的主题是什么",
            "主要人物有哪些",
            "叶文洁这个人物有什么变化？",
            "What is this book about?",
            "What are the main themes?",
            "How does Macbeth change over the play?",
            "Give me a summary of the book",
        ] {
            assert!(is_broad(broad), "{broad}");
        }
        for moment in [
            "叶文洁在红岸做什么？",
            "Who killed Polonius?",
            "第三回讲了什么？",
        ] {
            assert!(!is_broad(moment), "{moment}");
        }
    }
}
