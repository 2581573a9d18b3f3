//! Building guides in the background: for each serving text whose guide is not finished,
//! under a lease in the database (any instance, or the CLI, takes up a dead worker's
//! guide where its summaries stop), a summary of every section in reading order — each
//! from that section's text and the summaries before it, so no entry knows what follows
//! it (map) — then of the whole book from the sections' summaries (reduce). Each summary
//! is stored as it is made. The cost is planned to fit the book's token budget: a long
//! section is read through passages spread over it; when the budget runs out the guide is
//! finished with what it has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::prompts::{self, BOOK_SUMMARY_TOKENS, SUMMARY_TOKENS};
use crate::background::{self, lease_end};
use crate::domain::{BookTextInfo, GuideEntry, GuideState, TextChunk, TextSection};
use crate::error::Result;
use crate::llm::{
    ChatModel, ChatRequest, ModelError, ModelEvent, Priority, PromptMessage, Sampling,
};
use crate::store::Store;
use crate::tokens::{estimate_prompt, estimate_tokens};

/// Timings of the guide's background work.
#[derive(Debug, Clone, Copy)]
pub struct GuideSettings {
    /// How long a worker holds a guide between summaries.
    pub lease: Duration,
    /// How often the database is looked at for texts needing a guide.
    pub poll: Duration,
}

impl Default for GuideSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(30),
        }
    }
}

/// The least of a section's text read for its summary, in estimated tokens.
const MIN_SECTION_INPUT: i64 = 150;
/// The most of a section's text read for its summary, in estimated tokens.
const MAX_SECTION_INPUT: i64 = 3000;

/// Hears `(text id, sections summarised, sections to summarise)`.
pub(super) type Progress<'a> = &'a (dyn Fn(i64, usize, usize) + Send + Sync);

/// Builds guides.
pub(super) struct Builder {
    pub(super) store: Arc<dyn Store>,
    pub(super) model: Arc<dyn ChatModel>,
    pub(super) budget: u64,
    /// The model's context window, in tokens (no prompt may outgrow it).
    pub(super) context: u64,
    pub(super) settings: GuideSettings,
}

#[async_trait]
impl background::Worker for Builder {
    const WORK: &'static str = "building books' guides";

    fn poll(&self) -> Duration {
        self.settings.poll
    }

    async fn run_once(&self) -> Result<bool> {
        self.build_all(&|_, _, _| {}).await
    }
}

/// Whether a section holds more than its heading (only those are summarised).
pub(super) fn has_body(section: &TextSection) -> bool {
    section.end.saturating_sub(section.start) > section.title.chars().count() + 24
}

impl Builder {
    /// Builds every guide with work left that no other worker holds; whether any was.
    pub(super) async fn build_all(&self, progress: Progress<'_>) -> Result<bool> {
        let mut worked = false;
        for text in self
            .store
            .guides_to_build(crate::timestamp::Timestamp::now())
            .await?
        {
            let now = crate::timestamp::Timestamp::now();
            if !self
                .store
                .lease_guide(text.id, lease_end(self.settings.lease), now)
                .await?
            {
                continue;
            }
            worked = true;
            match self.build(&text, progress).await? {
                Ok(()) => {
                    self.store
                        .finish_guide(text.id, GuideState::Ready, None)
                        .await?;
                    tracing::info!(isbn = %text.isbn, "a book's guide is built");
                }
                Err(err) if is_transient(&err) => {
                    // Kept as building: the lease runs out and a later pass carries on
                    // from the summaries already stored.
                    tracing::warn!(isbn = %text.isbn, error = %err, "the model is unavailable for a book's guide; retrying after the lease");
                }
                Err(err) => {
                    tracing::warn!(isbn = %text.isbn, error = %err, "the model failed on a book's guide");
                    let why = format!("the model failed: {err}");
                    self.store
                        .finish_guide(text.id, GuideState::Failed, Some(&why))
                        .await?;
                }
            }
        }
        Ok(worked)
    }

    /// Writes the guide's missing summaries: the outer error is the database's, the inner
    /// the model's.
    async fn build(
        &self,
        text: &BookTextInfo,
        progress: Progress<'_>,
    ) -> Result<std::result::Result<(), ModelError>> {
        let (sections, chunks) = self.store.book_text_parts(text.id).await?;
        let record = self.store.guide(text.id).await?;
        let done: HashMap<Option<u32>, String> = record
            .entries
            .into_iter()
            .map(|e| (e.section, e.summary))
            .collect();
        let todo: Vec<&TextSection> = sections.iter().filter(|s| has_body(s)).collect();
        let sample: String = chunks.iter().take(8).map(|c| c.text.as_str()).collect();
        let chinese = crate::tokens::mostly_cjk(&sample);
        let input = section_input(self.budget, todo.len()).min(self.room(SUMMARY_TOKENS));
        let mut spent = record.tokens;
        let mut earlier: Vec<String> = Vec::new();
        for (n, section) in todo.iter().enumerate() {
            let line = |summary: &str| format!("{}：{summary}", section.title);
            if let Some(summary) = done.get(&Some(section.index)) {
                earlier.push(line(summary));
                continue;
            }
            let body = read_section(&chunks, section.index, input);
            let prompt = prompts::section(&section.title, &body, &earlier, chinese);
            let cost = cost_of(&prompt, SUMMARY_TOKENS);
            if spent + cost > self.budget {
                tracing::warn!(isbn = %text.isbn, spent, budget = self.budget, "a book's guide reached its token budget; the rest of its sections have no summary");
                break;
            }
            let summary = match self.ask(prompt.clone(), SUMMARY_TOKENS).await {
                Ok(summary) => summary,
                Err(err) => return Ok(Err(err)),
            };
            let tokens = used(&prompt, &summary);
            spent += tokens;
            let entry = GuideEntry {
                section: Some(section.index),
                summary,
            };
            self.store
                .put_guide_entry(text.id, &entry, tokens, lease_end(self.settings.lease))
                .await?;
            earlier.push(line(&entry.summary));
            progress(text.id, n + 1, todo.len());
        }
        if done.contains_key(&None) || earlier.is_empty() {
            return Ok(Ok(()));
        }
        let left = self.budget.saturating_sub(spent).min(
            u64::try_from(self.room(BOOK_SUMMARY_TOKENS)).unwrap_or(0)
                + 2 * u64::from(BOOK_SUMMARY_TOKENS),
        );
        let prompt = prompts::book(&fit(&earlier, left), chinese);
        if spent + cost_of(&prompt, BOOK_SUMMARY_TOKENS) > self.budget {
            tracing::warn!(isbn = %text.isbn, "a book's guide has no room left for the whole book's summary");
            return Ok(Ok(()));
        }
        let summary = match self.ask(prompt.clone(), BOOK_SUMMARY_TOKENS).await {
            Ok(summary) => summary,
            Err(err) => return Ok(Err(err)),
        };
        let tokens = used(&prompt, &summary);
        let entry = GuideEntry {
            section: None,
            summary,
        };
        self.store
            .put_guide_entry(text.id, &entry, tokens, lease_end(self.settings.lease))
            .await?;
        Ok(Ok(()))
    }

    /// The tokens of text a prompt answered in `answer` tokens may carry within the
    /// model's context: a sixth is kept back (the estimate undercounts some tokenizers),
    /// and room for the instructions and the earlier summaries.
    fn room(&self, answer: u32) -> i64 {
        let context = i64::try_from(self.context).unwrap_or(i64::MAX);
        (context * 5 / 6 - i64::from(answer) - prompts::CONTEXT_TOKENS - 300).max(MIN_SECTION_INPUT)
    }

    /// The model's answer to `messages` (its text; reasoning left out).
    async fn ask(
        &self,
        messages: Vec<PromptMessage>,
        max_tokens: u32,
    ) -> std::result::Result<String, ModelError> {
        let mut stream = self
            .model
            .stream(ChatRequest {
                messages,
                user: "refbook-guide".to_owned(),
                max_tokens: Some(max_tokens),
                sampling: Sampling::default(),
                priority: Priority::Background,
                tools: None,
            })
            .await?;
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            if let ModelEvent::Content(more) = event? {
                text.push_str(&more);
            }
        }
        Ok(text.trim().to_owned())
    }
}

/// Whether the model may answer later (an outage, a rate limit, a broken stream): the
/// guide is retried rather than marked failed.
fn is_transient(err: &ModelError) -> bool {
    match err {
        ModelError::RateLimited
        | ModelError::Timeout(_)
        | ModelError::Network(_)
        | ModelError::Stream(_) => true,
        ModelError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// How much of each section's text is read, in estimated tokens: the budget shared among
/// the sections, after the whole book's summary and each summary's own cost.
fn section_input(budget: u64, sections: usize) -> i64 {
    let budget = i64::try_from(budget).unwrap_or(i64::MAX);
    let reduce = i64::from(BOOK_SUMMARY_TOKENS) * 4;
    let per_section = (budget - reduce) / i64::try_from(sections.max(1)).unwrap_or(1);
    let overhead = i64::from(SUMMARY_TOKENS) + prompts::CONTEXT_TOKENS + 200;
    (per_section - overhead).clamp(MIN_SECTION_INPUT, MAX_SECTION_INPUT)
}

/// A section's text within `tokens`: all of it, or passages spread evenly over it.
fn read_section(chunks: &[TextChunk], section: u32, tokens: i64) -> String {
    let mine: Vec<&TextChunk> = chunks.iter().filter(|c| c.section == section).collect();
    let total: i64 = mine.iter().map(|c| estimate_tokens(&c.text)).sum();
    if total <= tokens {
        return mine
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    }
    let average = (total / i64::try_from(mine.len().max(1)).unwrap_or(1)).max(1);
    let wanted = usize::try_from((tokens / average).max(1)).unwrap_or(1);
    let step = mine.len().div_ceil(wanted).max(1);
    mine.iter()
        .step_by(step)
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n…\n")
}

/// The sections' summaries, clipped to fit what is left of the budget.
fn fit(earlier: &[String], left: u64) -> String {
    let room = i64::try_from(left).unwrap_or(i64::MAX) - i64::from(BOOK_SUMMARY_TOKENS) * 2;
    let total: i64 = earlier.iter().map(|l| estimate_tokens(l)).sum();
    if total <= room {
        return earlier.join("\n");
    }
    let share = usize::try_from(room.max(0) / i64::try_from(earlier.len().max(1)).unwrap_or(1))
        .unwrap_or(0);
    earlier
        .iter()
        .map(|line| line.chars().take(share.max(20)).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn cost_of(prompt: &[PromptMessage], answer: u32) -> u64 {
    u64::try_from(estimate_prompt(prompt)).unwrap_or(0) + u64::from(answer)
}

fn used(prompt: &[PromptMessage], answer: &str) -> u64 {
    u64::try_from(estimate_prompt(prompt) + estimate_tokens(answer)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_section_is_read_through_passages_spread_over_it() {
        let chunks: Vec<TextChunk> = (0..10)
            .map(|n| TextChunk {
                section: 1,
                start: n * 100,
                end: n * 100 + 100,
                text: format!("passage {n} {}", "word ".repeat(60)),
            })
            .collect();
        let all = read_section(&chunks, 1, 100_000);
        assert!(all.contains("passage 0") && all.contains("passage 9"));
        let some = read_section(&chunks, 1, 200);
        assert!(some.contains("passage 0"));
        assert!(some.matches("passage").count() < 10);
        assert!(read_section(&chunks, 2, 200).is_empty());
    }

    #[test]
    fn outages_are_retried_and_refusals_fail_the_guide() {
        assert!(is_transient(&ModelError::RateLimited));
        assert!(is_transient(&ModelError::Network("reset".into())));
        assert!(is_transient(&ModelError::Status {
            status: 503,
            detail: String::new()
        }));
        assert!(!is_transient(&ModelError::Unauthorized));
        assert!(!is_transient(&ModelError::ContextExceeded));
        assert!(!is_transient(&ModelError::Status {
            status: 400,
            detail: String::new()
        }));
    }

    #[test]
    fn the_budget_is_shared_among_the_sections() {
        assert_eq!(section_input(200_000, 10), MAX_SECTION_INPUT);
        let many = section_input(200_000, 120);
        assert!(
            many > MIN_SECTION_INPUT && many < MAX_SECTION_INPUT,
            "{many}"
        );
        assert_eq!(section_input(1_000, 50), MIN_SECTION_INPUT);
    }
}
