//! The one answering step every path takes — a question in a conversation, regeneration,
//! the stateless endpoint, the OpenAI face's completions, the CLI: given the book (looked
//! up by the caller), the persona, the earlier turns and the question, it finds the
//! passages of the book's own text the question is about (the text the asker sees, within
//! their reading progress), and for a broad question or one naming a section the book's
//! guide; builds the prompt within the budget — system, facts, guide, passages, the newest
//! history that fits, the question — and opens the model's stream. A model that says the prompt exceeds its
//! context is asked once more with half the budget.

use super::{question_too_long, Answering};
use crate::books::{Book, PassageQuery};
use crate::chat::grounding::{add_guide, ground, search_query, sources_of, PASSAGES_PER_QUESTION};
use crate::chat::tokens::{estimate_tokens, MESSAGE_OVERHEAD};
use crate::chat::{prompt, Persona, Role};
use crate::domain::{ConversationId, Source, UserId};
use crate::error::Result;
use crate::llm::{
    ChatRequest, ModelError, ModelStream, Priority, PromptMessage, Sampling, ToolPassthrough,
};

/// Everything one answer needs.
pub(super) struct Question<'a> {
    /// The book talked about.
    pub book: &'a Book,
    /// Who answers.
    pub persona: &'a Persona,
    /// The client's own instructions (the OpenAI face's `system` messages), added to the
    /// system prompt.
    pub instructions: Option<&'a str>,
    /// The earlier turns, oldest first (the prompt keeps the newest that fit).
    pub history: &'a [(Role, String)],
    /// The question.
    pub question: &'a str,
    /// An unfinished answer to the question for the model to continue (the OpenAI
    /// face's "continue response"); its new text alone is streamed.
    pub unfinished: Option<&'a str>,
    /// Who asks (the model is told, for abuse tracking).
    pub user_id: UserId,
    /// The conversation it is asked in, if any (for the logs).
    pub conversation_id: Option<ConversationId>,
    /// The reply's longest length in tokens; the prompt gets the rest of the context.
    pub max_tokens: u32,
    /// Sampling settings for the model.
    pub sampling: Sampling,
    /// A client's tools and output format, passed to a model that takes them.
    pub tools: Option<ToolPassthrough>,
}

/// The model's stream, the prompt's estimated size in tokens, and the passages of the
/// book's text it was given, numbered as the answer cites them.
pub(super) struct Opened {
    pub stream: ModelStream,
    pub prompt_estimate: i64,
    pub sources: Vec<Source>,
}

impl Answering {
    /// Builds the prompt of `question` within the budget and opens the model's stream.
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` when the question alone does not fit (or the model still refuses
    /// it after the retry); `MODEL_ERROR`/`UPSTREAM_UNAVAILABLE` as the model refuses.
    pub(super) async fn open_answer(&self, question: Question<'_>) -> Result<Opened> {
        let Question {
            book,
            persona,
            instructions,
            history,
            question,
            unfinished,
            user_id,
            conversation_id,
            max_tokens,
            sampling,
            tools,
        } = question;
        let query = search_query(history, question);
        let found = self
            .shared
            .books
            .texts()
            .find(PassageQuery {
                isbn: &book.isbn,
                reader: Some(user_id),
                query: &query,
                question,
                limit: PASSAGES_PER_QUESTION,
                whole_book: false,
            })
            .await?;
        let facts = prompt::system_prompt(book, persona, question);
        let mut budget = self.shared.limits.context_tokens - i64::from(max_tokens);
        let named = found
            .as_ref()
            .map(|f| f.named.as_slice())
            .unwrap_or_default();
        let guide = self
            .shared
            .guides
            .for_prompt(&book.isbn, user_id, question, named, budget)
            .await?;
        let passed = tools.as_ref().map_or(0, passed_tokens);
        for attempt in 0..2 {
            // Passages may take half of what the system prompt and question leave.
            let ratio = self.calibration.ratio().max(0.1);
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let raw_budget = (budget as f64 / ratio) as i64;
            let allowance = (raw_budget - estimate_tokens(&facts) - estimate_tokens(question)) / 2;
            let mut system = facts.clone();
            let allowance = allowance - add_guide(&mut system, guide.as_ref(), question);
            let grounded = ground(&mut system, found.clone(), question, allowance);
            if let Some(instructions) = instructions {
                system.push_str("\n读者的附加要求（Reader's instructions）：\n");
                system.push_str(instructions);
            }
            // The unfinished answer and the tool loop's turns are kept whole, after the
            // question.
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let kept_cost = ((unfinished.map_or(0, |text| estimate_tokens(text) + MESSAGE_OVERHEAD)
                + passed) as f64
                * ratio)
                .ceil() as i64;
            let mut messages = prompt::build(
                system,
                history,
                question,
                budget - kept_cost,
                self.calibration.ratio(),
            )
            .map_err(|_| question_too_long())?;
            if let Some(text) = unfinished {
                messages.push(PromptMessage {
                    role: Role::Assistant,
                    content: text.to_owned(),
                });
            }
            let prompt_estimate = prompt::estimate_prompt(&messages) + passed;
            tracing::debug!(
                ?conversation_id,
                passages = grounded.len(),
                prompt_messages = messages.len(),
                prompt_estimate,
                budget,
                "asking the model"
            );
            let request = ChatRequest {
                messages,
                user: user_id.to_string(),
                max_tokens: Some(max_tokens),
                sampling: sampling.clone(),
                priority: Priority::Interactive,
                tools: tools.clone(),
            };
            match self.model.stream(request).await {
                Ok(stream) => {
                    return Ok(Opened {
                        stream,
                        prompt_estimate,
                        sources: sources_of(&grounded),
                    })
                }
                Err(ModelError::ContextExceeded) if attempt == 0 => {
                    tracing::warn!(
                        ?conversation_id,
                        budget,
                        "the model said the prompt exceeds its context; trimming harder \
                         (check REFBOOK_LLM_CONTEXT_TOKENS against the model's context)"
                    );
                    budget /= 2;
                }
                Err(err) => {
                    tracing::warn!(%user_id, ?conversation_id, error = %err, "the model refused");
                    return Err(refusal_of(err, tools.as_ref()));
                }
            }
        }
        Err(question_too_long())
    }
}

/// Roughly how many tokens a client's passed tools, output format and tool turns add to
/// the prompt.
pub(super) fn passed_tokens(tools: &ToolPassthrough) -> i64 {
    let fields = serde_json::to_string(&tools.fields).unwrap_or_default();
    let turns = serde_json::to_string(&tools.turns).unwrap_or_default();
    estimate_tokens(&fields) + estimate_tokens(&turns)
}

/// The error for a model's refusal; a request with tools or an output format passed
/// through that the model answers `400`/`422` refused those (they are the client's), not
/// the server's settings.
pub(super) fn refusal_of(err: ModelError, tools: Option<&ToolPassthrough>) -> crate::Error {
    let passed = tools.filter(|t| !t.fields.is_empty());
    match (&err, passed) {
        (
            ModelError::Status {
                status: 400 | 422, ..
            },
            Some(passed),
        ) => {
            let field = if passed.fields.contains_key("tools") {
                "tools"
            } else {
                "response_format"
            };
            crate::Error::invalid(
                field,
                format!("AI 模型拒绝了请求中的 {field}（它可能不支持），请修改后再试"),
                format!(
                    "The AI model refused the request's {field} (it may not support them); \
                     change them and try again"
                ),
            )
            .with_source(err)
        }
        _ => err.into(),
    }
}
