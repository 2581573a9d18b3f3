//! Conversations and chat: personas, conversations and messages, the prompt, server-owned
//! generation ([`Replies`]), usage and quota, collections — behind the [`Chat`] service.

mod completion;
mod generate;
pub mod prompt;
mod reply;
mod sweep;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use crate::domain::{
    BookBrief, CollectionItem, Conversation, FinishReason, Message, MessageStatus, NewMessage,
    Persona, Role, TokenUsage,
};
pub use completion::{
    BookModel, ClientMessage, Completion, CompletionRequest, CompletionStream, PersonaChoice,
    MAX_COMPLETION_MESSAGES, MAX_INSTRUCTIONS_CHARS, MAX_STOP_SEQUENCES, PERSONA_SEPARATOR,
};
pub use generate::Started;
pub use reply::{
    GenerationObserver, GenerationReport, Positioned, Replies, Reply, ReplyEvent, ReplyListener,
};

use crate::books::{Books, Isbn};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::llm::ChatModel;
use crate::store::Store;
use crate::timestamp::Timestamp;

/// The persona of conversations that name none.
const DEFAULT_PERSONA: &str = "librarian";

/// `origin` of conversations created by the stateless `/api/chat/stream/` endpoint.
pub const STATELESS_ORIGIN: &str = "chat_stream";

/// The limits chat enforces.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    /// Daily tokens per user; 0 = unlimited.
    pub daily_token_quota: u64,
    /// Generations at once per user.
    pub max_concurrent: usize,
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// Most messages in a stateless request.
    pub max_messages: usize,
    /// The model's context window in tokens.
    pub context_tokens: i64,
    /// The longest reply in tokens (sent as `max_tokens`); the prompt gets the rest.
    pub max_tokens: u32,
    /// How long a reply's claim lasts unless its owner renews it.
    pub reply_lease: Duration,
    /// How long the final save of a reply is retried.
    pub reply_save_timeout: Duration,
    /// Generations at once in this process, all users together.
    pub max_generations: usize,
    /// Largest reply in bytes (answer and reasoning together).
    pub max_reply_bytes: usize,
}

impl ChatLimits {
    /// The limits in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            daily_token_quota: config.daily_token_quota,
            max_concurrent: config.max_concurrent_generations,
            max_message_chars: config.max_message_chars,
            max_messages: config.max_messages,
            context_tokens: i64::try_from(config.model_window().0).unwrap_or(i64::MAX),
            max_tokens: u32::try_from(config.model_window().1).unwrap_or(u32::MAX),
            reply_lease: Duration::from_secs(config.reply_lease_secs.max(3)),
            reply_save_timeout: Duration::from_secs(config.reply_save_timeout_secs),
            max_generations: config.max_generations.max(1),
            max_reply_bytes: config.llm_max_reply_bytes.max(1),
        }
    }

    /// Tokens a prompt may use: the context minus the reply's share.
    pub fn prompt_budget(&self) -> i64 {
        self.context_tokens - i64::from(self.max_tokens)
    }
}

/// The chat service.
pub struct Chat {
    store: Arc<dyn Store>,
    books: Arc<Books>,
    model: Arc<dyn ChatModel>,
    replies: Replies,
    limits: ChatLimits,
    observer: Option<GenerationObserver>,
    /// This process's name on the reply claims it holds.
    owner: Arc<str>,
    /// The token estimate's calibration against the model's counts.
    calibration: Arc<tokens::Calibration>,
    /// One permit per generation running here (the global cap).
    generations: Arc<tokio::sync::Semaphore>,
    /// Completions (the OpenAI-compatible face) running here, per user.
    completion_slots: Arc<completion::UserSlots>,
    /// Built-in personas by key, once read.
    builtin_personas: moka::sync::Cache<String, Persona>,
    /// Settles replies whose owner died; stops with the service.
    _sweeper: sweep::Sweeper,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("model", &self.model.model_name())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn not_found_conversation() -> Error {
    Error::not_found("对话", "Conversation")
}

impl Chat {
    /// The service. Must be called inside a Tokio runtime: it starts the sweep that
    /// settles replies whose owner died (every half lease).
    pub fn new(
        store: Arc<dyn Store>,
        books: Arc<Books>,
        model: Arc<dyn ChatModel>,
        limits: ChatLimits,
        observer: Option<GenerationObserver>,
    ) -> Self {
        let sweeper = sweep::Sweeper::start(store.clone(), limits.reply_lease / 2);
        Self {
            store,
            books,
            model,
            replies: Replies::default(),
            limits,
            observer,
            owner: sweep::owner_id().into(),
            calibration: Arc::default(),
            generations: Arc::new(tokio::sync::Semaphore::new(limits.max_generations)),
            completion_slots: Arc::default(),
            builtin_personas: moka::sync::Cache::new(64),
            _sweeper: sweeper,
        }
    }

    /// The running and recent replies.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        self.model.model_name()
    }

    /// Gets the model ready before the first question (a local model downloads and loads
    /// its weights); a server calls it at start.
    ///
    /// # Errors
    ///
    /// [`ModelError`](crate::llm::ModelError) as the first question would get it.
    pub async fn prepare_model(&self) -> Result<(), crate::llm::ModelError> {
        self.model.prepare().await
    }

    // ---- personas -------------------------------------------------------------------

    /// Built-in personas and the user's own.
    pub async fn personas(&self, user_id: i64) -> Result<Vec<Persona>> {
        Ok(self.store.personas(user_id).await?)
    }

    /// One persona the user may see.
    pub async fn persona(&self, user_id: i64, id: i64) -> Result<Persona> {
        self.store
            .persona(id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("角色", "Persona"))
    }

    /// Creates a custom persona (name 1–32 characters, description 1–2000).
    pub async fn create_persona(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
    ) -> Result<Persona> {
        let name = name.trim();
        let description = description.trim();
        crate::text::refuse_controls("name", name)?;
        crate::text::refuse_controls("description", description)?;
        if !(1..=PERSONA_NAME_MAX_CHARS).contains(&name.chars().count()) {
            return Err(Error::invalid(
                "name",
                "角色名须为 1–32 个字符",
                "name must be 1–32 characters",
            ));
        }
        if !(1..=PERSONA_DESCRIPTION_MAX_CHARS).contains(&description.chars().count()) {
            return Err(Error::invalid(
                "description",
                "角色说明须为 1–2000 个字符",
                "description must be 1–2000 characters",
            ));
        }
        Ok(self
            .store
            .create_persona(user_id, name, description, Timestamp::now())
            .await?)
    }

    /// Deletes one of the user's personas; built-ins cannot be deleted (`400`).
    pub async fn delete_persona(&self, user_id: i64, id: i64) -> Result<()> {
        let persona = self.persona(user_id, id).await?;
        if persona.builtin {
            return Err(Error::invalid(
                "id",
                "内置角色不能删除",
                "Built-in personas cannot be deleted",
            ));
        }
        self.store.delete_persona(id, user_id).await?;
        Ok(())
    }

    async fn check_persona(&self, user_id: i64, persona_id: Option<i64>) -> Result<Option<i64>> {
        match persona_id {
            None => Ok(None),
            Some(id) => match self.store.persona(id, user_id).await? {
                Some(_) => Ok(Some(id)),
                None => Err(Error::invalid(
                    "persona_id",
                    "角色不存在",
                    "No such persona",
                )),
            },
        }
    }

    async fn persona_of(&self, target: &crate::store::ReplyTarget) -> Result<Persona> {
        if let Some(id) = target.persona_id {
            if let Some(persona) = self.store.persona(id, target.user_id).await? {
                return Ok(persona);
            }
        }
        self.builtin_persona(DEFAULT_PERSONA)
            .await?
            .ok_or_else(|| Error::internal("the built-in librarian persona is missing"))
    }

    /// A built-in persona by key. Built-ins change only with a migration, so they are
    /// kept in memory once read.
    async fn builtin_persona(&self, key: &str) -> Result<Option<Persona>> {
        if let Some(persona) = self.builtin_personas.get(key) {
            return Ok(Some(persona));
        }
        let found = self.store.builtin_persona(key).await?;
        if let Some(persona) = &found {
            self.builtin_personas
                .insert(key.to_owned(), persona.clone());
        }
        Ok(found)
    }

    // ---- conversations ----------------------------------------------------------------

    fn present(&self, mut conversation: Conversation) -> Conversation {
        conversation.book.cover_url = self
            .books
            .present_cover(&conversation.isbn, conversation.book.cover_url.take());
        conversation
    }

    /// Creates a conversation about a book (looked up first; unknown `404`). The title
    /// defaults to the book's.
    pub async fn create_conversation(
        &self,
        user_id: i64,
        isbn: &Isbn,
        title: Option<&str>,
        persona_id: Option<i64>,
    ) -> Result<Conversation> {
        let book = self.books.get(isbn).await?;
        let title = clean_title(title)?.unwrap_or_else(|| book.title.clone());
        let persona_id = self.check_persona(user_id, persona_id).await?;
        let conversation = self
            .store
            .create_conversation(
                user_id,
                isbn.as_str(),
                &title,
                persona_id,
                "api",
                Timestamp::now(),
            )
            .await?;
        Ok(self.present(conversation))
    }

    /// The user's conversations, most recently active first.
    pub async fn conversations(
        &self,
        user_id: i64,
        isbn: Option<&Isbn>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Conversation>)> {
        let (count, list) = self
            .store
            .conversations(user_id, isbn.map(Isbn::as_str), limit, offset)
            .await?;
        Ok((count, list.into_iter().map(|c| self.present(c)).collect()))
    }

    /// One conversation of the user's.
    pub async fn conversation(&self, user_id: i64, id: i64) -> Result<Conversation> {
        let conversation = self
            .store
            .conversation(id, user_id)
            .await?
            .ok_or_else(not_found_conversation)?;
        Ok(self.present(conversation))
    }

    /// A conversation with its messages, oldest first.
    pub async fn conversation_with_messages(
        &self,
        user_id: i64,
        id: i64,
    ) -> Result<(Conversation, Vec<Message>)> {
        let conversation = self.conversation(user_id, id).await?;
        let messages = self.store.messages(id).await?;
        Ok((conversation, messages))
    }

    /// Renames and/or changes the persona (`Some(None)`: back to the default).
    pub async fn update_conversation(
        &self,
        user_id: i64,
        id: i64,
        title: Option<&str>,
        persona_id: Option<Option<i64>>,
    ) -> Result<Conversation> {
        let title = clean_title(title)?;
        let persona_id = match persona_id {
            Some(Some(pid)) => Some(self.check_persona(user_id, Some(pid)).await?),
            other => other,
        };
        let conversation = self
            .store
            .update_conversation(id, user_id, title.as_deref(), persona_id, Timestamp::now())
            .await?
            .ok_or_else(not_found_conversation)?;
        Ok(self.present(conversation))
    }

    /// Deletes a conversation (stopping its reply first).
    pub async fn delete_conversation(&self, user_id: i64, id: i64) -> Result<()> {
        self.conversation(user_id, id).await?;
        if let Some(reply) = self.replies.running(id) {
            reply.cancel(FinishReason::Cancelled);
            reply.finished().await;
        }
        self.store.delete_conversation(id, user_id).await?;
        self.replies.forget(id);
        Ok(())
    }

    /// Appends a message without asking the model (importing history).
    pub async fn append_message(
        &self,
        user_id: i64,
        id: i64,
        role: Role,
        content: &str,
    ) -> Result<Message> {
        self.conversation(user_id, id).await?;
        let content = self.clean_content(content)?;
        Ok(self
            .store
            .add_message(id, NewMessage::complete(role, content), Timestamp::now())
            .await?)
    }

    /// Deletes a message (not one being generated: `409`).
    pub async fn delete_message(&self, user_id: i64, id: i64, message_id: i64) -> Result<()> {
        self.conversation(user_id, id).await?;
        if self
            .replies
            .running(id)
            .is_some_and(|r| r.message_id == message_id)
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "该消息正在生成，请先停止",
                "That message is being generated; stop it first",
            ));
        }
        if !self.store.delete_message(id, message_id).await? {
            return Err(Error::not_found("消息", "Message"));
        }
        self.replies.forget(id);
        Ok(())
    }

    fn clean_content(&self, content: &str) -> Result<String> {
        crate::text::refuse_controls("content", content)?;
        let trimmed = content.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(
                "content",
                "消息不能为空",
                "content must not be empty",
            ));
        }
        if content.chars().count() > self.limits.max_message_chars {
            return Err(Error::invalid(
                "content",
                format!("消息不能超过 {} 个字符", self.limits.max_message_chars),
                format!(
                    "content must be at most {} characters",
                    self.limits.max_message_chars
                ),
            ));
        }
        Ok(content.to_owned())
    }

    // ---- collections --------------------------------------------------------------------

    /// Collects a book (looked up first; unknown `404`); adding twice is fine.
    pub async fn collect(&self, user_id: i64, isbn: &Isbn) -> Result<CollectionItem> {
        let book = self.books.get(isbn).await?;
        let created_at = self
            .store
            .collect(user_id, isbn.as_str(), Timestamp::now())
            .await?;
        Ok(CollectionItem {
            isbn: book.isbn.clone(),
            book,
            created_at,
        })
    }

    /// The user's collection, newest first.
    pub async fn collection(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<CollectionItem>)> {
        let (count, items) = self.store.collection(user_id, limit, offset).await?;
        let items = items
            .into_iter()
            .map(|(book, created_at)| CollectionItem {
                isbn: book.isbn.clone(),
                book: self.books.present(book),
                created_at,
            })
            .collect();
        Ok((count, items))
    }

    /// Removes a book from the collection (`404` if it was not there).
    pub async fn uncollect(&self, user_id: i64, isbn: &Isbn) -> Result<()> {
        if !self.store.uncollect(user_id, isbn.as_str()).await? {
            return Err(Error::not_found("收藏", "Collection item"));
        }
        Ok(())
    }
}

/// The longest conversation title, in characters (after trimming).
pub const TITLE_MAX_CHARS: usize = 100;
/// The longest persona name, in characters (after trimming).
pub const PERSONA_NAME_MAX_CHARS: usize = 32;
/// The longest persona description, in characters (after trimming).
pub const PERSONA_DESCRIPTION_MAX_CHARS: usize = 2000;

/// A title: trimmed, 1–100 characters; `None` when not given.
fn clean_title(title: Option<&str>) -> Result<Option<String>> {
    match title.map(str::trim) {
        None => Ok(None),
        Some(t)
            if (1..=TITLE_MAX_CHARS).contains(&t.chars().count())
                && !t.chars().any(char::is_control) =>
        {
            Ok(Some(t.to_owned()))
        }
        Some(_) => Err(Error::invalid(
            "title",
            "标题须为 1–100 个字符",
            "title must be 1–100 characters",
        )),
    }
}
