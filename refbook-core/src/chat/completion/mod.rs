//! Stateless completions for the OpenAI-compatible face: a book (and persona) named as a
//! model, the client's whole exchange in, the model's stream out. Nothing is stored as a
//! conversation; the tokens count toward the user's daily quota, and the same caps apply
//! as to conversations (the global generation cap, and a per-user cap on completions
//! running at once in this process).

mod model_name;
mod stream;

pub use model_name::{BookModel, PersonaChoice};
pub use stream::CompletionStream;
pub(crate) use stream::UserSlots;

use super::{prompt, Chat, Persona, Role};
use crate::books::{Book, Isbn};
use crate::domain::UserId;
use crate::error::{Error, ErrorKind, Result};
use crate::llm::{ChatRequest, ModelError, Sampling};
use crate::timestamp::Timestamp;
use model_name::model_not_found;
use stream::{Accounting, CompletionSlot};

/// The separator between an ISBN and a persona in a model name.
pub const PERSONA_SEPARATOR: char = '@';

/// The most characters of a client's own `system` instructions kept in the prompt.
pub const MAX_INSTRUCTIONS_CHARS: usize = 4000;

/// The most messages one completion request may carry (the prompt keeps what fits).
pub const MAX_COMPLETION_MESSAGES: usize = 1000;

/// The most `stop` sequences (as OpenAI allows).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// One message of a completion request, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// What a client asks of the OpenAI-compatible face.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The book and persona.
    pub model: BookModel,
    /// The exchange, oldest first; the last message must be the user's.
    pub messages: Vec<ClientMessage>,
    /// The longest reply in tokens (capped by the server's maximum).
    pub max_tokens: Option<u32>,
    /// Sampling settings passed to the model.
    pub sampling: Sampling,
}

/// A started completion.
pub struct Completion {
    /// The book talked about.
    pub book: Book,
    /// The model's events: text, reasoning, the finish reason, then exactly one
    /// [`ModelEvent::Usage`](crate::llm::ModelEvent::Usage) (the model's count, or an estimate) — or an error.
    pub events: CompletionStream,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("isbn", &self.book.isbn)
            .finish_non_exhaustive()
    }
}

/// A checked exchange: the client's extra instructions, the earlier turns, the question.
struct Exchange {
    instructions: Option<String>,
    history: Vec<(Role, String)>,
    question: String,
}

impl Chat {
    /// One of the user's places among completions running at once (`RATE_LIMIT` when all
    /// are taken): counted by every instance in Redis when they share it, else here (and
    /// here while Redis does not answer).
    async fn completion_slot(&self, user_id: UserId) -> Result<CompletionSlot> {
        let max = self.limits.max_concurrent;
        if let Some(cluster) = &self.cluster {
            let name = format!("completions:{user_id}");
            // While Redis does not answer, count here (the cluster logs the outage).
            match cluster.take_place(&name, max).await {
                Ok(Some(place)) => return Ok(CompletionSlot::Shared { _place: place }),
                Ok(None) => return Err(super::generate::too_many_for_user()),
                Err(_) => {}
            }
        }
        self.completion_slots
            .take(user_id, max)
            .map(|place| CompletionSlot::Local { _place: place })
            .ok_or_else(super::generate::too_many_for_user)
    }

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
        let exchange = self.exchange(&request.messages)?;
        check_sampling(&request.sampling)?;
        let persona = self.chosen_persona(user_id, &request.model).await?;
        let book = self.model_book(&request.model).await?;
        self.check_quota(user_id).await?;
        let permit = self.generation_permit()?;
        let slot = self.completion_slot(user_id).await?;
        let mut system = prompt::system_prompt(&book, &persona, &exchange.question);
        if let Some(instructions) = &exchange.instructions {
            system.push_str("\n读者的附加要求（Reader's instructions）：\n");
            system.push_str(instructions);
        }
        let max_tokens = request.max_tokens.map_or(self.limits.max_tokens, |asked| {
            asked.min(self.limits.max_tokens)
        });
        let mut budget = self.limits.context_tokens - i64::from(max_tokens);
        for attempt in 0..2 {
            let messages = prompt::build(
                system.clone(),
                &exchange.history,
                &exchange.question,
                budget,
                self.calibration.ratio(),
            )
            .map_err(|_| super::generate::question_too_long())?;
            let prompt_estimate = prompt::estimate_prompt(&messages);
            let model_request = ChatRequest {
                messages,
                user: user_id.to_string(),
                max_tokens: Some(max_tokens),
                sampling: request.sampling.clone(),
            };
            match self.model.stream(model_request).await {
                Ok(inner) => {
                    let accounting = Accounting::new(
                        self.store.clone(),
                        user_id,
                        prompt_estimate,
                        self.calibration.clone(),
                        permit,
                        slot,
                    );
                    let events =
                        CompletionStream::new(inner, accounting, self.limits.max_reply_bytes);
                    return Ok(Completion { book, events });
                }
                Err(ModelError::ContextExceeded) if attempt == 0 => budget /= 2,
                Err(err) => {
                    tracing::warn!(user_id = %user_id, error = %err, "the model refused a completion");
                    return Err(err.into());
                }
            }
        }
        Err(super::generate::question_too_long())
    }

    /// The models a user may name first (`GET /v1/models`): the books of their
    /// conversations and collection with their latest activity, most recent first.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn recent_books(
        &self,
        user_id: UserId,
        limit: i64,
    ) -> Result<Vec<(Isbn, Timestamp)>> {
        Ok(self.store.recent_books(user_id, limit).await?)
    }

    /// Checks that a model name names a book found through the lookup chain and a
    /// persona the user may use (`GET /v1/models/{model}`).
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown book or persona.
    pub async fn book_model(&self, user_id: UserId, model: &BookModel) -> Result<Book> {
        self.chosen_persona(user_id, model).await?;
        self.model_book(model).await
    }

    /// The book a model names, through the whole lookup chain; an unknown book is an
    /// unknown model.
    async fn model_book(&self, model: &BookModel) -> Result<Book> {
        self.books.get(&model.isbn).await.map_err(|err| {
            if err.kind() == ErrorKind::NotFound {
                model_not_found(&model.to_string())
            } else {
                err
            }
        })
    }

    /// The persona a model name chose (`NOT_FOUND` as for an unknown model).
    async fn chosen_persona(&self, user_id: UserId, model: &BookModel) -> Result<Persona> {
        let found = match &model.persona {
            PersonaChoice::Default => self.builtin_persona(super::DEFAULT_PERSONA).await?,
            PersonaChoice::Builtin(key) => self.builtin_persona(key).await?,
            PersonaChoice::Id(id) => self.store.persona(*id, user_id).await?,
        };
        found.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "模型名中的角色不存在",
                "The persona named in the model does not exist",
            )
            .with_field("model")
        })
    }

    /// Checks a client's exchange: `system`/`developer` messages become instructions,
    /// empty assistant turns are skipped, the last message must be the user's.
    fn exchange(&self, messages: &[ClientMessage]) -> Result<Exchange> {
        let invalid = |zh: &str, en: &str| Error::invalid("messages", zh.to_owned(), en.to_owned());
        if messages.is_empty() || messages.len() > MAX_COMPLETION_MESSAGES {
            return Err(Error::invalid(
                "messages",
                format!("messages 须为 1–{MAX_COMPLETION_MESSAGES} 条"),
                format!("messages must hold 1–{MAX_COMPLETION_MESSAGES} entries"),
            ));
        }
        let mut instructions = String::new();
        let mut turns = Vec::with_capacity(messages.len());
        for message in messages {
            crate::text::refuse_controls("messages", &message.content)?;
            let role = match message.role.as_str() {
                "system" | "developer" => {
                    if !instructions.is_empty() {
                        instructions.push('\n');
                    }
                    instructions.push_str(message.content.trim());
                    continue;
                }
                "user" => Role::User,
                "assistant" => Role::Assistant,
                _ => {
                    return Err(invalid(
                        "role 须为 system、user 或 assistant（不支持工具调用）",
                        "role must be system, user or assistant (tools are not supported)",
                    ))
                }
            };
            if role == Role::Assistant && message.content.trim().is_empty() {
                continue;
            }
            turns.push((role, message.content.clone()));
        }
        if instructions.chars().count() > MAX_INSTRUCTIONS_CHARS {
            return Err(Error::invalid(
                "messages",
                format!("system 消息合计不能超过 {MAX_INSTRUCTIONS_CHARS} 个字符"),
                format!("system messages must total at most {MAX_INSTRUCTIONS_CHARS} characters"),
            ));
        }
        let Some((Role::User, question)) = turns.pop() else {
            return Err(invalid(
                "最后一条消息须为用户的提问",
                "The last message must be the user's",
            ));
        };
        let question = self.clean_content(&question)?;
        Ok(Exchange {
            instructions: (!instructions.is_empty()).then_some(instructions),
            history: turns,
            question,
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
        };
        assert!(check_sampling(&fine).is_ok());
    }
}
