//! Stateless completions for the OpenAI-compatible face: a book (and persona) named as a
//! model, the client's whole exchange in, the model's stream out. Nothing is stored as a
//! conversation; the tokens count toward the user's daily quota, and the same caps apply
//! as to conversations (the global generation cap, and a per-user cap on completions
//! running at once in this process).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use super::reply::event::floor_char_boundary;
use super::tokens::{estimate_tokens, Calibration};
use super::{prompt, Chat, Persona, Role, TokenUsage};
use crate::books::{Book, Isbn};
use crate::error::{Error, ErrorKind, Result};
use crate::llm::{ChatRequest, ModelError, ModelEvent, ModelStream, Sampling};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// The separator between an ISBN and a persona in a model name.
pub const PERSONA_SEPARATOR: char = '@';

/// The most characters of a client's own `system` instructions kept in the prompt.
pub const MAX_INSTRUCTIONS_CHARS: usize = 4000;

/// The most messages one completion request may carry (the prompt keeps what fits).
pub const MAX_COMPLETION_MESSAGES: usize = 1000;

/// The most `stop` sequences (as OpenAI allows).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// Which persona a model name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonaChoice {
    /// No `@…`: the librarian.
    Default,
    /// A built-in persona by key (`librarian`, `author`).
    Builtin(String),
    /// One of the user's own personas (or a built-in) by id.
    Id(i64),
}

/// A model name of the OpenAI-compatible face: an ISBN in any accepted form, optionally
/// followed by `@persona` (`9787536692930@author`, `978-7-5366-9293-0@12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookModel {
    /// The book.
    pub isbn: Isbn,
    /// The persona.
    pub persona: PersonaChoice,
}

impl BookModel {
    /// Parses a model name; `NOT_FOUND` (no such model) when it names no valid ISBN or an
    /// impossible persona.
    pub fn parse(name: &str) -> Result<Self> {
        let not_found = || model_not_found(name);
        let (isbn, persona) = match name.rsplit_once(PERSONA_SEPARATOR) {
            Some((isbn, persona)) => (isbn, Some(persona.trim())),
            None => (name, None),
        };
        let isbn = Isbn::parse(isbn).map_err(|_| not_found())?;
        let persona = match persona {
            None => PersonaChoice::Default,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                PersonaChoice::Id(p.parse().map_err(|_| not_found())?)
            }
            Some(p) if (1..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()) => {
                PersonaChoice::Builtin(p.to_owned())
            }
            Some(_) => return Err(not_found()),
        };
        Ok(Self { isbn, persona })
    }
}

impl std::fmt::Display for BookModel {
    /// The canonical name: the ISBN-13, then `@persona` when one was chosen.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.isbn.as_str())?;
        match &self.persona {
            PersonaChoice::Default => Ok(()),
            PersonaChoice::Builtin(key) => write!(f, "{PERSONA_SEPARATOR}{key}"),
            PersonaChoice::Id(id) => write!(f, "{PERSONA_SEPARATOR}{id}"),
        }
    }
}

fn model_not_found(name: &str) -> Error {
    let shown: String = name.chars().take(64).collect();
    Error::new(
        ErrorKind::NotFound,
        format!("模型 {shown} 不存在：请用图书的 ISBN 作为模型名，可加 @角色"),
        format!("The model {shown} does not exist: name a book's ISBN, optionally with @persona"),
    )
    .with_field("model")
}

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
    /// [`ModelEvent::Usage`] (the model's count, or an estimate) — or an error.
    pub events: CompletionStream,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("isbn", &self.book.isbn)
            .finish_non_exhaustive()
    }
}

/// Completions running per user in this process.
#[derive(Debug, Default)]
pub(super) struct UserSlots(Mutex<HashMap<i64, usize>>);

/// One user's running completion; frees its place when dropped.
struct UserSlot {
    slots: Arc<UserSlots>,
    user_id: i64,
}

impl UserSlots {
    fn take(self: &Arc<Self>, user_id: i64, max: usize) -> Option<UserSlot> {
        let mut running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = running.entry(user_id).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            slots: self.clone(),
            user_id,
        })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut running = self
            .slots
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.user_id);
            }
        }
    }
}

/// What a completion records when it ends, however it ends (finished, failed, or
/// dropped because the client went away): its tokens against the user's quota.
struct Accounting {
    store: Arc<dyn Store>,
    user_id: i64,
    prompt_estimate: i64,
    calibration: Arc<Calibration>,
    completion_text_tokens: i64,
    reported: Option<TokenUsage>,
    /// Set once the usage was recorded (then dropping records nothing more).
    recorded: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _slot: UserSlot,
}

impl Accounting {
    fn usage(&self) -> TokenUsage {
        self.reported
            .unwrap_or_else(|| TokenUsage::new(self.prompt_estimate, self.completion_text_tokens))
    }
}

/// Adds a completion's tokens to the user's count for today.
async fn add_usage(store: Arc<dyn Store>, user_id: i64, usage: TokenUsage) {
    let day = Timestamp::now().utc_day();
    let added = store
        .add_usage(user_id, &day, usage.prompt_tokens, usage.completion_tokens)
        .await;
    if let Err(err) = added {
        tracing::error!(user_id, error = %err, "recording a completion's usage failed");
    }
}

impl Accounting {
    /// Takes the usage to record, once (and teaches the calibration the model's count).
    fn take_usage(&mut self) -> Option<TokenUsage> {
        if std::mem::replace(&mut self.recorded, true) {
            return None;
        }
        if let Some(reported) = self.reported {
            self.calibration
                .observe(self.prompt_estimate, reported.prompt_tokens);
        }
        Some(self.usage())
    }
}

impl Drop for Accounting {
    /// A completion dropped before its usage was recorded (the client went away, or
    /// the stream failed): recorded in the background.
    fn drop(&mut self) {
        let Some(usage) = self.take_usage() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                user_id = self.user_id,
                "no runtime to record a completion's usage"
            );
            return;
        };
        runtime.spawn(add_usage(self.store.clone(), self.user_id, usage));
    }
}

/// The model's stream with the reply's byte cap, usage always reported at the end, and
/// the usage recorded when it ends or is dropped.
pub struct CompletionStream {
    inner: ModelStream,
    accounting: Accounting,
    bytes: usize,
    max_bytes: usize,
    /// Events to hand out before reading on (the cut's finish, the closing usage).
    queued: std::collections::VecDeque<ModelEvent>,
    ended: bool,
}

impl CompletionStream {
    /// Records the completion's usage against the user's quota now (once), so that the
    /// answer is only finished when its tokens count. A stream dropped before this
    /// records them in the background.
    pub async fn record_usage(&mut self) {
        if let Some(usage) = self.accounting.take_usage() {
            add_usage(
                self.accounting.store.clone(),
                self.accounting.user_id,
                usage,
            )
            .await;
        }
    }

    /// A text event within the byte cap; at the cap the rest is cut and the reply ends
    /// with finish reason `length`.
    fn capped(&mut self, event: ModelEvent) -> Option<ModelEvent> {
        let (text, reasoning) = match &event {
            ModelEvent::Content(text) => (text, false),
            ModelEvent::Reasoning(text) => (text, true),
            _ => return Some(event),
        };
        let room = self.max_bytes.saturating_sub(self.bytes);
        let keep = if text.len() <= room {
            text.len()
        } else {
            floor_char_boundary(text, room)
        };
        self.bytes += keep;
        self.accounting.completion_text_tokens += estimate_tokens(&text[..keep]);
        if keep == text.len() {
            return Some(event);
        }
        self.queued
            .push_back(ModelEvent::Finish("length".to_owned()));
        self.queued
            .push_back(ModelEvent::Usage(self.accounting.usage()));
        self.ended = true;
        let piece = text[..keep].to_owned();
        let piece = if reasoning {
            ModelEvent::Reasoning(piece)
        } else {
            ModelEvent::Content(piece)
        };
        (keep > 0).then_some(piece)
    }
}

impl Stream for CompletionStream {
    type Item = std::result::Result<ModelEvent, ModelError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match futures::ready!(self.inner.poll_next_unpin(cx)) {
                None => {
                    self.ended = true;
                    if self.accounting.reported.is_none() {
                        let usage = self.accounting.usage();
                        return Poll::Ready(Some(Ok(ModelEvent::Usage(usage))));
                    }
                }
                Some(Err(err)) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Some(Ok(ModelEvent::Usage(usage))) => {
                    self.accounting.reported = Some(usage);
                    return Poll::Ready(Some(Ok(ModelEvent::Usage(usage))));
                }
                Some(Ok(event)) => {
                    if let Some(event) = self.capped(event) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
            }
        }
    }
}

/// A checked exchange: the client's extra instructions, the earlier turns, the question.
struct Exchange {
    instructions: Option<String>,
    history: Vec<(Role, String)>,
    question: String,
}

impl Chat {
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
    pub async fn complete(&self, user_id: i64, request: CompletionRequest) -> Result<Completion> {
        let exchange = self.exchange(&request.messages)?;
        check_sampling(&request.sampling)?;
        let persona = self.chosen_persona(user_id, &request.model).await?;
        let book = self.model_book(&request.model).await?;
        self.check_quota(user_id).await?;
        let permit = self.generation_permit()?;
        let slot = self
            .completion_slots
            .take(user_id, self.limits.max_concurrent)
            .ok_or_else(super::generate::too_many_for_user)?;
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
                    let accounting = Accounting {
                        store: self.store.clone(),
                        user_id,
                        prompt_estimate,
                        calibration: self.calibration.clone(),
                        completion_text_tokens: 0,
                        reported: None,
                        recorded: false,
                        _permit: permit,
                        _slot: slot,
                    };
                    let events = CompletionStream {
                        inner,
                        accounting,
                        bytes: 0,
                        max_bytes: self.limits.max_reply_bytes,
                        queued: std::collections::VecDeque::new(),
                        ended: false,
                    };
                    return Ok(Completion { book, events });
                }
                Err(ModelError::ContextExceeded) if attempt == 0 => budget /= 2,
                Err(err) => {
                    tracing::warn!(user_id, error = %err, "the model refused a completion");
                    return Err(err.into());
                }
            }
        }
        Err(super::generate::question_too_long())
    }

    /// The models a user may name first (`GET /v1/models`): the books of their
    /// conversations and collection with their latest activity, most recent first.
    pub async fn recent_books(&self, user_id: i64, limit: i64) -> Result<Vec<(Isbn, Timestamp)>> {
        let books = self.store.recent_books(user_id, limit).await?;
        Ok(books
            .into_iter()
            .filter_map(|(isbn, at)| Some((Isbn::parse(&isbn).ok()?, at)))
            .collect())
    }

    /// Checks that a model name names a book found through the lookup chain and a
    /// persona the user may use (`GET /v1/models/{model}`).
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown book or persona.
    pub async fn book_model(&self, user_id: i64, model: &BookModel) -> Result<Book> {
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
    async fn chosen_persona(&self, user_id: i64, model: &BookModel) -> Result<Persona> {
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
    fn model_names_are_isbns_with_an_optional_persona() {
        let plain = BookModel::parse("9787536692930").unwrap();
        assert_eq!(plain.isbn.as_str(), "9787536692930");
        assert_eq!(plain.persona, PersonaChoice::Default);
        let author = BookModel::parse("978-7-5366-9293-0@author").unwrap();
        assert_eq!(author.isbn.as_str(), "9787536692930");
        assert_eq!(author.persona, PersonaChoice::Builtin("author".into()));
        assert_eq!(author.to_string(), "9787536692930@author");
        assert_eq!(plain.to_string(), "9787536692930");
        assert_eq!(
            BookModel::parse("7536692935@12").unwrap().persona,
            PersonaChoice::Id(12)
        );
        for bad in [
            "gpt-4o",
            "9787536692931",
            "9787536692930@",
            "9787536692930@Bad Name",
        ] {
            let err = BookModel::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{bad}");
        }
    }

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
