//! Stateless completions for the OpenAI-compatible face: a book (and persona) named as a
//! model, the client's whole exchange in, the model's stream out. Nothing is stored as a
//! conversation; the tokens count toward the user's daily quota, and the same caps apply
//! as to conversations (the global generation cap, and the one per-user cap on replies
//! generating at once).

mod model_list;
mod model_name;
mod responses;
mod stream;
mod task;

pub use model_list::{ListedModel, MAX_LISTED_BOOKS, MAX_LISTED_MODELS};
pub use model_name::{BookModel, PersonaChoice, PERSONA_SEPARATOR};
pub use responses::{ResponseDraft, ResponseOutcome, ResponseRequest};
pub use stream::{CompletionEvent, CompletionStream};
pub use task::{is_client_task, TASK_COST_DIVISOR, TASK_MAX_TOKENS};

use super::step::{Opened, Question};
use super::Answering;
use crate::books::Book;
use crate::chat::exchange::{ClientMessage, Exchange, ExchangeRules};
use crate::domain::UserId;
use crate::error::{Error, ErrorKind, Result};
use crate::llm::{Sampling, ToolPassthrough};
use model_name::model_not_found;
use stream::Accounting;

/// The most messages one completion request may carry (the prompt keeps what fits).
pub const MAX_COMPLETION_MESSAGES: usize = 1000;

/// The most `stop` sequences (as OpenAI allows).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// What a client asks of the OpenAI-compatible face.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The book and persona.
    pub model: BookModel,
    /// The exchange, oldest first; the last message must be the user's, or an
    /// unfinished answer to it (the assistant's) that the model continues.
    pub messages: Vec<ClientMessage>,
    /// The longest reply in tokens (capped by the server's maximum).
    pub max_tokens: Option<u32>,
    /// Sampling settings passed to the model.
    pub sampling: Sampling,
    /// A client's own housekeeping task rather than a reader's question (see
    /// [`is_client_task`]): answered without the book's prompt or passages, at most
    /// [`TASK_MAX_TOKENS`] long, and counted at 1 in [`TASK_COST_DIVISOR`] tokens.
    pub task: bool,
    /// The client's tools, output format and tool turns, passed to the model as sent;
    /// only for a model that takes them ([`Answering::passes_tools`]).
    pub tools: Option<ToolPassthrough>,
}

/// A started completion.
pub struct Completion {
    /// The book talked about.
    pub book: Book,
    /// The passages of the book's text the model was given, numbered as the answer cites
    /// them (empty: none; see [`citations_in`](crate::chat::citations_in)).
    pub sources: Vec<crate::domain::Source>,
    /// The model's events: text, reasoning, the finish reason, then exactly one
    /// [`CompletionEvent::Usage`] (the model's count, or an estimate) — or an error.
    pub events: CompletionStream,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("isbn", &self.book.isbn)
            .finish_non_exhaustive()
    }
}

impl Answering {
    /// Starts a completion for the OpenAI-compatible face: looks the book up (through
    /// the whole chain), checks quota and caps, builds the prompt (the book's system
    /// prompt, the client's `system` messages as extra instructions, as much of the
    /// exchange as fits the budget) and opens the model's stream.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown book or persona, `INVALID_PARAMS` for a malformed
    /// exchange, `QUOTA_EXCEEDED`, `RATE_LIMIT` over the per-user cap, `SERVER_BUSY` at
    /// the global cap, `MODEL_ERROR` when the model refuses.
    pub async fn complete(
        &self,
        user_id: UserId,
        request: CompletionRequest,
    ) -> Result<Completion> {
        let limits = &self.shared.limits;
        let exchange = Exchange::check(
            request.messages,
            ExchangeRules {
                max_messages: MAX_COMPLETION_MESSAGES,
                max_message_chars: limits.max_message_chars,
                instructions: true,
            },
        )?;
        check_sampling(&request.sampling)?;
        let tools = request.tools.filter(|tools| !tools.is_empty());
        if tools.is_some() && !self.passes_tools() {
            return Err(Error::invalid(
                "tools",
                "这个模型不能调用工具，也不能按请求的格式输出",
                "This model cannot call tools or take an output format as given",
            ));
        }
        let persona = self
            .conversations
            .chosen_persona(user_id, &request.model)
            .await?;
        let book = self.model_book(&request.model).await?;
        self.check_quota(user_id).await?;
        let permit = self.generation_permit()?;
        let slot = self.reply_slot(user_id).await?;
        let mut max_tokens = request
            .max_tokens
            .map_or(limits.max_tokens, |asked| asked.min(limits.max_tokens));
        if request.task {
            max_tokens = max_tokens.min(TASK_MAX_TOKENS);
            let opened = self
                .open_task(&exchange, user_id, max_tokens, request.sampling, tools)
                .await?;
            let accounting = Accounting::new(
                self.shared.store.clone(),
                user_id,
                opened.prompt_estimate,
                self.calibration.clone(),
                permit,
                slot,
            )
            .with_cost_divisor(TASK_COST_DIVISOR);
            let events = CompletionStream::new(opened.stream, accounting, limits.max_reply_bytes);
            return Ok(Completion {
                book,
                sources: Vec::new(),
                events,
            });
        }
        let Opened {
            stream,
            prompt_estimate,
            sources,
        } = self
            .open_answer(Question {
                book: &book,
                persona: &persona,
                instructions: exchange.instructions.as_deref(),
                history: &exchange.history,
                question: &exchange.question,
                unfinished: exchange.unfinished.as_deref(),
                user_id,
                conversation_id: None,
                max_tokens,
                sampling: request.sampling,
                tools,
            })
            .await?;
        let accounting = Accounting::new(
            self.shared.store.clone(),
            user_id,
            prompt_estimate,
            self.calibration.clone(),
            permit,
            slot,
        );
        let events = CompletionStream::new(stream, accounting, limits.max_reply_bytes);
        Ok(Completion {
            book,
            sources,
            events,
        })
    }

    /// Whether the model takes a client's tools and output format as they are (an
    /// OpenAI-compatible API with `llm_passthrough_tools` on): then a completion passes
    /// them through, else one that demands them is refused.
    pub fn passes_tools(&self) -> bool {
        self.model.takes_tools()
    }

    /// The book a model names, through the whole lookup chain; an unknown book is an
    /// unknown model.
    pub(super) async fn model_book(&self, model: &BookModel) -> Result<Book> {
        self.shared.books.get(&model.isbn).await.map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                model_not_found(&model.to_string())
            } else {
                err
            }
        })
    }
}

/// Checks sampling settings against OpenAI's ranges.
fn check_sampling(sampling: &Sampling) -> Result<()> {
    if sampling
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(Error::invalid(
            "temperature",
            "temperature 须在 0 到 2 之间",
            "temperature must be between 0 and 2",
        ));
    }
    if sampling.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(Error::invalid(
            "top_p",
            "top_p 须在 0 到 1 之间",
            "top_p must be between 0 and 1",
        ));
    }
    let bad_stop = sampling.stop.len() > MAX_STOP_SEQUENCES
        || sampling.stop.iter().any(|s| {
            s.is_empty() || s.chars().count() > 64 || crate::text::has_forbidden_control(s)
        });
    if bad_stop {
        return Err(Error::invalid(
            "stop",
            format!("stop 最多 {MAX_STOP_SEQUENCES} 个、每个 1–64 个字符"),
            format!("stop takes at most {MAX_STOP_SEQUENCES} sequences of 1–64 characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_checked_against_openai_ranges() {
        assert!(check_sampling(&Sampling::default()).is_ok());
        let hot = Sampling {
            temperature: Some(2.5),
            ..Sampling::default()
        };
        assert!(check_sampling(&hot).is_err());
        let many = Sampling {
            stop: vec!["a".into(); 5],
            ..Sampling::default()
        };
        assert!(check_sampling(&many).is_err());
        let fine = Sampling {
            temperature: Some(0.3),
            top_p: Some(0.9),
            stop: vec!["\n\n".into()],
            json_object: true,
        };
        assert!(check_sampling(&fine).is_ok());
    }
}
