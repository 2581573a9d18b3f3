//! The OpenAI face's Responses API on the same answering step as chat completions: a
//! turn's input (after `instructions` and, with `previous_response_id`, the exchange of
//! the user's earlier response) becomes one completion; the answer is kept for follow-ups
//! unless the client says `store: false`.

use super::{Completion, CompletionRequest};
use crate::chat::answering::Answering;
use crate::chat::exchange::ClientMessage;
use crate::chat::{BookModel, Role, Sampling, Source};
use crate::domain::{TokenUsage, UserId};
use crate::error::{Error, Result};
use crate::store::StoredResponse;
use crate::timestamp::Timestamp;

/// What a client asks of `POST /v1/responses`.
#[derive(Debug, Clone)]
pub struct ResponseRequest {
    /// The book and persona.
    pub model: BookModel,
    /// The system instructions of this turn (not carried to follow-ups, as OpenAI's).
    pub instructions: Option<String>,
    /// This turn's input: the user's text, or messages (system and developer ones are
    /// more instructions for this turn; the last is the user's, or an unfinished answer
    /// to continue).
    pub input: Vec<ClientMessage>,
    /// The user's earlier response this one follows.
    pub previous_response_id: Option<String>,
    /// Whether the response is kept (for `GET` and follow-ups).
    pub store: bool,
    /// The longest answer in tokens (`max_output_tokens`).
    pub max_tokens: Option<u32>,
    /// Sampling settings passed to the model.
    pub sampling: Sampling,
    /// A client's housekeeping task (see [`CompletionRequest::task`]).
    pub task: bool,
    /// The output format passed to a model that takes it (`text.format` as chat
    /// completions' `response_format`; see [`CompletionRequest::tools`]).
    pub tools: Option<crate::llm::ToolPassthrough>,
}

/// A response started: its id and what is kept of it once answered.
#[derive(Debug, Clone)]
pub struct ResponseDraft {
    /// `resp_…`.
    pub id: String,
    /// The model's canonical name.
    pub model: String,
    /// The request's instructions.
    pub instructions: Option<String>,
    /// The response it follows.
    pub previous_id: Option<String>,
    /// Whether it is kept.
    pub store: bool,
    /// When it was asked.
    pub created_at: Timestamp,
    user_id: UserId,
    exchange: Vec<(Role, String)>,
}

/// How a response ended, to keep it.
#[derive(Debug, Clone)]
pub struct ResponseOutcome {
    /// The answer's text (without the unfinished start a client sent).
    pub output: String,
    /// Whether it was cut short (the token or byte cap).
    pub incomplete: bool,
    /// The tokens used.
    pub usage: TokenUsage,
    /// The passages the model was given.
    pub sources: Vec<Source>,
}

fn previous_not_found() -> Error {
    Error::not_found("之前的回答", "Previous response").with_field("previous_response_id")
}

impl Answering {
    /// Starts a response: reads the earlier response (`NOT_FOUND`, field
    /// `previous_response_id`, when it is not the user's or was not kept), then asks the
    /// model as [`complete`](Self::complete) does, with the same caps, quota and
    /// passages.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete), and `NOT_FOUND` as above.
    pub async fn respond(
        &self,
        user_id: UserId,
        request: ResponseRequest,
    ) -> Result<(ResponseDraft, Completion)> {
        let mut exchange: Vec<(Role, String)> = match &request.previous_response_id {
            None => Vec::new(),
            Some(id) => {
                let previous = self
                    .shared
                    .store
                    .response(user_id, id)
                    .await?
                    .ok_or_else(previous_not_found)?;
                let mut turns = previous.exchange;
                turns.push((Role::Assistant, previous.output));
                turns
            }
        };
        let mut messages = Vec::with_capacity(exchange.len() + request.input.len() + 1);
        if let Some(instructions) = &request.instructions {
            messages.push(ClientMessage {
                role: Role::System,
                content: instructions.clone(),
            });
        }
        messages.extend(exchange.iter().map(|(role, text)| ClientMessage {
            role: *role,
            content: text.clone(),
        }));
        for message in &request.input {
            if message.role != Role::System {
                exchange.push((message.role, message.content.clone()));
            }
        }
        messages.extend(request.input);
        let model = request.model.to_string();
        let completion = self
            .complete(
                user_id,
                CompletionRequest {
                    model: request.model,
                    messages,
                    max_tokens: request.max_tokens,
                    sampling: request.sampling,
                    task: request.task,
                    tools: request.tools,
                },
            )
            .await?;
        let draft = ResponseDraft {
            id: format!("resp_{:032x}", rand::random::<u128>()),
            model,
            instructions: request.instructions,
            previous_id: request.previous_response_id,
            store: request.store,
            created_at: Timestamp::now(),
            user_id,
            exchange,
        };
        Ok((draft, completion))
    }

    /// Keeps an answered response when its request said `store` (an unfinished answer the
    /// client sent is kept joined with its continuation).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn keep_response(
        &self,
        draft: ResponseDraft,
        outcome: ResponseOutcome,
    ) -> Result<()> {
        if !draft.store {
            return Ok(());
        }
        let mut exchange = draft.exchange;
        // An unfinished answer the client sent is kept joined with its continuation.
        let output = match exchange.pop() {
            Some((Role::Assistant, start)) => start + &outcome.output,
            last => {
                exchange.extend(last);
                outcome.output
            }
        };
        let kept = StoredResponse {
            id: draft.id,
            user_id: draft.user_id,
            model: draft.model,
            instructions: draft.instructions,
            previous_id: draft.previous_id,
            exchange,
            output,
            status: if outcome.incomplete {
                "incomplete"
            } else {
                "completed"
            }
            .to_owned(),
            usage: outcome.usage,
            sources: outcome.sources,
            created_at: draft.created_at,
        };
        Ok(self.shared.store.insert_response(&kept).await?)
    }

    /// One of the user's kept responses.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when it is not the user's or was not kept.
    pub async fn kept_response(&self, user_id: UserId, id: &str) -> Result<StoredResponse> {
        self.shared
            .store
            .response(user_id, id)
            .await?
            .ok_or_else(|| Error::not_found("回答", "Response"))
    }

    /// Deletes one of the user's kept responses.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when it is not the user's or was not kept.
    pub async fn delete_kept_response(&self, user_id: UserId, id: &str) -> Result<()> {
        if self.shared.store.delete_response(user_id, id).await? {
            Ok(())
        } else {
            Err(Error::not_found("回答", "Response"))
        }
    }
}
