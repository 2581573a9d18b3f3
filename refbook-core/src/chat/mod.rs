//! Conversations and chat behind the [`Chat`] service, a file per concern: `personas.rs`,
//! `conversations.rs` (conversations and messages as stored), `prompt.rs` and
//! `tokens.rs`, `generate.rs` (claiming a reply and starting it), `running.rs` (stop, attach, shutdown), `reply/` (the reply engine), `completion/` (the
//! OpenAI-compatible face's stateless completions), `sweep.rs`.

mod completion;
mod conversations;
mod generate;
mod personas;
pub mod prompt;
mod reply;
mod running;
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
    GenerationObserver, GenerationReport, Positioned, Reply, ReplyEvent, ReplyListener,
};

use crate::books::Books;
use crate::cluster::{Cluster, Notice};
use crate::config::ChatSettings;
use crate::error::{Error, Result};
use crate::llm::ChatModel;
use crate::store::Store;
use reply::Replies;

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
    /// The limits of `config`, for a model with this `(context, longest reply)` window in
    /// tokens ([`Config::model_window`](crate::Config::model_window)) and replies of at most
    /// `max_reply_bytes`.
    pub fn new(config: &ChatSettings, window: (u64, u64), max_reply_bytes: usize) -> Self {
        Self {
            daily_token_quota: config.daily_token_quota,
            max_concurrent: config.max_concurrent_generations,
            max_message_chars: config.max_message_chars,
            max_messages: config.max_messages,
            context_tokens: i64::try_from(window.0).unwrap_or(i64::MAX),
            max_tokens: u32::try_from(window.1).unwrap_or(u32::MAX),
            reply_lease: Duration::from_secs(config.reply_lease_secs.max(3)),
            reply_save_timeout: Duration::from_secs(config.reply_save_timeout_secs),
            max_generations: config.max_generations.max(1),
            max_reply_bytes: max_reply_bytes.max(1),
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
    /// The other instances, when they share live replies through Redis.
    cluster: Option<Cluster>,
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
            cluster: None,
            _sweeper: sweeper,
        }
    }

    /// Shares replies with the other instances through `cluster`: replies generating here
    /// are published live, replies generating elsewhere are followed live, and `stop/`,
    /// regeneration and deletion reach the instance that generates.
    #[must_use]
    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        let replies = self.replies.clone();
        cluster.on_notice(Arc::new(move |notice| match *notice {
            Notice::Stop { conversation_id } => {
                if let Some(reply) = replies.running(conversation_id) {
                    reply.cancel(FinishReason::Cancelled);
                }
            }
            Notice::Changed { conversation_id } => replies.forget(conversation_id),
            Notice::Revoked { .. } => {}
        }));
        self.cluster = Some(cluster);
        self
    }

    /// Tells the other instances, if any, that the conversation changed.
    fn notify(&self, notice: Notice) {
        if let Some(cluster) = &self.cluster {
            cluster.notify(notice);
        }
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
}

/// The longest conversation title, in characters (after trimming).
pub const TITLE_MAX_CHARS: usize = 100;
/// The longest persona name, in characters (after trimming).
pub const PERSONA_NAME_MAX_CHARS: usize = 32;
/// The longest persona description, in characters (after trimming).
pub const PERSONA_DESCRIPTION_MAX_CHARS: usize = 2000;
