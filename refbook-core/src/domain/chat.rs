//! Conversations, messages, personas and collections as stored and as shown.

use serde::Serialize;

use super::{ConversationId, Isbn, MessageId, PersonaId, UserId};
use crate::timestamp::Timestamp;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The reader.
    User,
    /// The model.
    Assistant,
    /// Instructions (imported history only).
    System,
}

impl Role {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
        }
    }

    /// Parses a stored or requested role.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Where a message's generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Finished normally (and every user or imported message).
    Complete,
    /// Being generated now.
    Generating,
    /// Stopped early; what was produced is kept.
    Partial,
    /// The model failed; what was produced is kept.
    Failed,
}

impl MessageStatus {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Generating => "generating",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "complete" => Some(Self::Complete),
            "generating" => Some(Self::Generating),
            "partial" => Some(Self::Partial),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why a reply ended. `stop` and `length` are the model's own endings; the others say why
/// a reply did not end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// The model hit its token limit (`max_tokens` or the context).
    Length,
    /// The provider's content filter cut the answer.
    ContentFilter,
    /// The model answered with tool calls for the client to run (only where a client's
    /// tools were passed through).
    ToolCalls,
    /// Stopped on request (`stop/`, deleting the conversation, regenerating).
    Cancelled,
    /// The server stopped it (shutdown grace, a crash, a lost lease).
    Interrupted,
    /// The model failed or sent something unreadable.
    Error,
}

impl FinishReason {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
            Self::ToolCalls => "tool_calls",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::Error => "error",
        }
    }

    /// Parses a stored reason.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stop" => Some(Self::Stop),
            "length" => Some(Self::Length),
            "content_filter" => Some(Self::ContentFilter),
            "tool_calls" => Some(Self::ToolCalls),
            "cancelled" => Some(Self::Cancelled),
            "interrupted" => Some(Self::Interrupted),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    /// A model's `finish_reason`: `length`, `content_filter` and `tool_calls` as they
    /// are, anything else (`stop`, `eos`, …) as a normal end.
    pub fn from_model(text: &str) -> Self {
        match text {
            "length" => Self::Length,
            "content_filter" => Self::ContentFilter,
            "tool_calls" => Self::ToolCalls,
            _ => Self::Stop,
        }
    }

    /// The status a reply ending this way is stored with.
    pub fn status(self) -> MessageStatus {
        match self {
            Self::Stop | Self::Length | Self::ContentFilter | Self::ToolCalls => {
                MessageStatus::Complete
            }
            Self::Cancelled | Self::Interrupted => MessageStatus::Partial,
            Self::Error => MessageStatus::Failed,
        }
    }
}

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct TokenUsage {
    /// Tokens of the prompt.
    pub prompt_tokens: i64,
    /// Tokens generated.
    pub completion_tokens: i64,
    /// Their sum.
    pub total_tokens: i64,
}

impl TokenUsage {
    /// Usage from its two parts.
    pub fn new(prompt_tokens: i64, completion_tokens: i64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Its key (in paths and JSON, a number).
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it: the reader, the model, or (imported history) instructions.
    pub role: Role,
    /// The text (the answer, for assistant messages).
    pub content: String,
    /// The model's reasoning, kept apart from the answer.
    pub reasoning: Option<String>,
    /// Generation status.
    pub status: MessageStatus,
    /// Why a generated reply ended (`None` while generating and for messages that were
    /// not generated).
    pub finish_reason: Option<FinishReason>,
    /// Token usage (assistant messages).
    pub usage: Option<TokenUsage>,
    /// The passages of the book's text the reply was given, numbered (empty when it was
    /// given none, and for every other message).
    pub sources: Vec<super::Source>,
    /// The numbers of `sources` the reply cites (`[n]` in its text), ascending.
    pub citations: Vec<u32>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Who wrote it: the reader, the model, or (imported history) instructions.
    pub role: Role,
    /// The text to store.
    pub content: String,
    /// The model's reasoning, kept apart from the answer.
    pub reasoning: Option<String>,
    /// Its generation status (`complete` for anything not generated).
    pub status: MessageStatus,
    /// Tokens used (replies only).
    pub usage: Option<TokenUsage>,
}

impl NewMessage {
    /// A finished message of `role` with `content`.
    pub fn complete(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            reasoning: None,
            status: MessageStatus::Complete,
            usage: None,
        }
    }
}

/// The book as a conversation shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookBrief {
    /// The title shown in lists (the book's, unless the reader renamed it).
    pub title: String,
    /// Authors, `A, B`.
    pub author: String,
    /// Cover URL as clients should load it.
    pub cover_url: Option<String>,
}

/// A conversation with its summary fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// Its key (in paths and JSON, a number).
    pub id: ConversationId,
    /// The book's ISBN.
    pub isbn: Isbn,
    /// The title shown in lists (the book's, unless the reader renamed it).
    pub title: String,
    /// The persona spoken with (`null`: the default librarian).
    pub persona_id: Option<PersonaId>,
    /// The book in brief.
    pub book: BookBrief,
    /// How many messages.
    pub message_count: i64,
    /// The newest message.
    pub last_message: Option<Message>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Last activity.
    pub updated_at: Timestamp,
    /// The owner (not shown).
    #[serde(skip)]
    pub user_id: UserId,
}

/// A persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persona {
    /// Its key (in paths and JSON, a number).
    pub id: PersonaId,
    /// `librarian` or `author` for built-ins, else `null`.
    pub key: Option<String>,
    /// Display name.
    pub name: String,
    /// What it is (for custom personas: the instructions).
    pub description: String,
    /// Built in (cannot be deleted).
    pub builtin: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A collected book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionItem {
    /// The ISBN.
    pub isbn: Isbn,
    /// The book.
    pub book: super::Book,
    /// When it was collected.
    pub created_at: Timestamp,
}
