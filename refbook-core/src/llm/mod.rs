//! The LLM seam: [`ChatModel`] streams a reply for a prompt; [`OpenAiCompatible`] speaks
//! to DeepSeek, OpenAI, Ollama, vLLM or llama.cpp.

mod download_progress;
#[cfg(feature = "local-model")]
pub mod local;
mod openai;
mod tools;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

pub use download_progress::{DownloadProgress, LogProgress};
pub use openai::{OpenAiCompatible, Timeouts};
pub use tools::{ToolCallDelta, ToolPassthrough, PASSED_FIELDS};

use crate::domain::{FinishReason, Role, TokenUsage};
use crate::error::{Error, ErrorKind};

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    /// Who says it: instructions, the reader or the model.
    pub role: Role,
    /// Text (never earlier reasoning).
    pub content: String,
}

/// What to ask the model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// System prompt, history and question, in order; a last assistant message is an
    /// unfinished answer the model continues (only the new text is streamed).
    pub messages: Vec<PromptMessage>,
    /// The asking user's id (sent as `user`, for the provider's audit).
    pub user: String,
    /// The longest reply in tokens, reasoning included (sent as `max_tokens`).
    pub max_tokens: Option<u32>,
    /// Sampling settings a client chose (the OpenAI-compatible face); empty otherwise.
    pub sampling: Sampling,
    /// Whether a reader waits for it (a local model answers readers first).
    pub priority: Priority,
    /// Tools and output format passed through as the client sent them (only to a model
    /// whose [`ChatModel::takes_tools`] is true).
    pub tools: Option<ToolPassthrough>,
}

/// Who waits for a reply: a local model, which answers one request at a time, serves
/// readers before background work (a book's guide), which yields between its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// A reader's question.
    #[default]
    Interactive,
    /// Work nobody watches as it happens.
    Background,
}

/// How a model running in this process is doing, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalModelReport {
    /// Requests waiting for the model (not yet started).
    pub waiting: u64,
    /// Requests started since the start.
    pub started: u64,
    /// Microseconds started requests spent waiting, in total.
    pub waited_micros: u64,
    /// Requests refused because they waited too long.
    pub refused_busy: u64,
    /// Prompt tokens taken from the prefix cache.
    pub prompt_tokens_cached: u64,
    /// Prompt tokens processed.
    pub prompt_tokens_computed: u64,
    /// Memory the prefix cache holds, in bytes.
    pub cache_bytes: u64,
    /// Prompts the prefix cache holds.
    pub cache_entries: u64,
}

/// Sampling settings passed through to the model as given; `None`/empty: the model's
/// defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    /// `temperature` (0–2).
    pub temperature: Option<f32>,
    /// `top_p` (0–1).
    pub top_p: Option<f32>,
    /// `stop` sequences (at most 4).
    pub stop: Vec<String>,
    /// Answer with one JSON object (`response_format` `json_object` where it does not
    /// pass through): a model run in this process only ever chooses tokens that keep the
    /// answer one JSON object and ends when it closes; a remote model is asked in the
    /// prompt alone.
    pub json_object: bool,
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEvent {
    /// More answer text.
    Content(String),
    /// More reasoning text.
    Reasoning(String),
    /// Token counts (usually at the end).
    Usage(TokenUsage),
    /// Why the model stopped, read by [`FinishReason::from_model`]: `Stop`, `Length`,
    /// `ContentFilter` or `ToolCalls`.
    Finish(FinishReason),
    /// A piece of a tool call (only when the request passed tools through).
    ToolCall(ToolCallDelta),
}

/// A streamed reply.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ModelError>> + Send>>;

/// Why the model could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No API key configured.
    #[error("no model configured: set REFBOOK_LLM_API_KEY (a remote model) or REFBOOK_LOCAL_MODEL (a GGUF file)")]
    NotConfigured,
    /// 401: the key was refused.
    #[error("the LLM API refused the key (HTTP 401); check REFBOOK_LLM_API_KEY")]
    Unauthorized,
    /// 402: the account has no balance.
    #[error("the LLM account has insufficient balance (HTTP 402)")]
    InsufficientBalance,
    /// 429: rate limited by the provider.
    #[error("the LLM API is rate limiting us (HTTP 429)")]
    RateLimited,
    /// Any other refusal (400, 404, 422, 5xx): status and a short body excerpt.
    #[error("the LLM API answered HTTP {status}: {detail}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body, for the log.
        detail: String,
    },
    /// No connection, or no data within the limit (`connect`, `first data`, `idle`).
    #[error("the LLM API timed out waiting for {0}")]
    Timeout(&'static str),
    /// Network failure.
    #[error("network error talking to the LLM API: {0}")]
    Network(String),
    /// An error object inside the stream, or a stream that broke off.
    #[error("the LLM stream failed: {0}")]
    Stream(String),
    /// A `data:` line that is not a chunk: the stream cannot be trusted any more.
    #[error("the LLM stream sent an unreadable chunk")]
    Corrupt,
    /// The prompt does not fit the model's context (llama.cpp's
    /// `exceed_context_size_error`, OpenAI's `context_length_exceeded`).
    #[error("the prompt exceeds the model's context")]
    ContextExceeded,
    /// The local model has too many requests waiting: this one waited its limit.
    #[error("the local model is busy: the question waited {0} s in its queue")]
    Busy(u64),
    /// The local model is not ready: its file is missing or could not be downloaded (the
    /// message says what to do).
    #[error("{0}")]
    Unavailable(String),
}

impl ModelError {
    /// Whether asking again later could succeed (rate limits, timeouts, outages), as
    /// opposed to a refusal of this request or of the server's settings.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited
            | Self::Timeout(_)
            | Self::Network(_)
            | Self::Stream(_)
            | Self::Busy(_)
            | Self::Unavailable(_) => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408,
            Self::NotConfigured
            | Self::Unauthorized
            | Self::InsufficientBalance
            | Self::Corrupt
            | Self::ContextExceeded => false,
        }
    }
}

impl From<ModelError> for Error {
    fn from(err: ModelError) -> Self {
        let (zh, en): (&str, &str) = match &err {
            ModelError::NotConfigured => (
                "AI 模型未配置：请设置 REFBOOK_LLM_API_KEY（远程模型）或 REFBOOK_LOCAL_MODEL（本地 GGUF 模型文件）",
                "The AI model is not configured: set REFBOOK_LLM_API_KEY (a remote model) or REFBOOK_LOCAL_MODEL (a local GGUF file)",
            ),
            ModelError::Unavailable(_) => (
                "本地 AI 模型还没有就绪（可能仍在下载），请稍后再试",
                "The local AI model is not ready yet (it may still be downloading); please try again later",
            ),
            ModelError::RateLimited => (
                "AI 服务繁忙，请稍后再试",
                "The AI service is busy; please try again shortly",
            ),
            ModelError::Timeout(_) => (
                "AI 服务响应超时，请稍后再试",
                "The AI service timed out; please try again",
            ),
            ModelError::Busy(_) => {
                return Error::new(
                    ErrorKind::Busy,
                    "本地 AI 模型正忙，排队的问题太多，请稍后再试",
                    "The local AI model is busy answering other questions; please try again shortly",
                )
                .with_retry_after(Duration::from_secs(10))
                .with_source(err.clone());
            }
            ModelError::ContextExceeded => {
                return Error::invalid(
                    "content",
                    "问题太长，超出了 AI 模型的上下文长度，请缩短后再问",
                    "The question is too long for the AI model's context; please shorten it",
                )
                .with_source(err.clone());
            }
            other if !other.is_transient() => (
                "AI 服务拒绝了这个请求（服务端的模型配置有误），重试不会成功，请联系管理员",
                "The AI service refused this request (the server's model settings are wrong); \
                 retrying will not help, please tell the operator",
            ),
            _ => (
                "AI 服务暂时不可用，请稍后再试",
                "The AI service is unavailable right now; please try again later",
            ),
        };
        let mut out = Error::new(ErrorKind::ModelUnavailable, zh, en).with_source(err.clone());
        if matches!(err, ModelError::RateLimited | ModelError::Unavailable(_)) {
            out = out.with_retry_after(Duration::from_secs(10));
        }
        out
    }
}

/// One LLM API.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// The model's name as shown in replies (`deepseek-reasoner`, …).
    fn model_name(&self) -> &str;
    /// Starts a reply. An error here means the model refused at once (before any data).
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError>;
    /// Gets ready to answer (a local model downloads and loads its weights) so the first
    /// question need not wait; models with nothing to prepare return at once.
    ///
    /// # Errors
    ///
    /// The [`ModelError`] the first question would get.
    async fn prepare(&self) -> Result<(), ModelError> {
        Ok(())
    }
    /// How a model running in this process is doing (its queue, its cache); `None` for
    /// remote models.
    fn local_report(&self) -> Option<LocalModelReport> {
        None
    }
    /// Whether the model takes a client's tools and output format as they are
    /// ([`ChatRequest::tools`]) and can answer with tool calls; a model that cannot has
    /// requests that demand them refused before it is asked.
    fn takes_tools(&self) -> bool {
        false
    }
}

/// The model used when none is configured: every request fails with `NotConfigured`.
#[derive(Debug, Clone)]
pub struct Unconfigured {
    /// The configured model name.
    pub model: String,
}

#[async_trait]
impl ChatModel for Unconfigured {
    fn model_name(&self) -> &str {
        &self.model
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ModelStream, ModelError> {
        Err(ModelError::NotConfigured)
    }
}
