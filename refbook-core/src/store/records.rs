//! Rows as the store hands them out and takes them in.

use crate::domain::{
    ConversationId, FinishReason, Isbn, Message, MessageId, MessageStatus, PersonaId, TokenUsage,
    UserId,
};
use crate::timestamp::Timestamp;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its key.
    pub id: UserId,
    /// Username as registered (`None` for WeChat-only users).
    pub username: Option<String>,
    /// Email, if given.
    pub email: Option<String>,
    /// Display name.
    pub nickname: String,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// argon2id PHC string (`None` for WeChat-only users).
    pub password_hash: Option<String>,
    /// WeChat openid for mini-program users.
    pub wechat_openid: Option<String>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the profile last changed.
    pub updated_at: Timestamp,
}

/// A user to create. Keys are the lower-cased forms that carry uniqueness.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Username as typed (normalised).
    pub username: Option<String>,
    /// Email as typed (trimmed).
    pub email: Option<String>,
    /// Display name.
    pub nickname: String,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// WeChat openid.
    pub wechat_openid: Option<String>,
    /// WeChat unionid.
    pub wechat_unionid: Option<String>,
}

/// A partial profile update: `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// New display name.
    pub nickname: Option<String>,
    /// New or cleared avatar URL.
    pub avatar_url: Option<Option<String>>,
    /// New or cleared email.
    pub email: Option<Option<String>>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Exchanged: the new token belongs to this session and user.
    Rotated {
        /// The login session.
        session_id: i64,
        /// Its user.
        user_id: UserId,
    },
    /// The token had been exchanged before: its session has been ended.
    Reused {
        /// The session's user.
        user_id: UserId,
    },
    /// Unknown or expired token (or its session ended).
    Invalid,
}

/// A stored personal API key (never the key itself: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its key.
    pub id: i64,
    /// Whose key it is.
    pub user_id: UserId,
    /// The name its owner gave it.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated a request (kept to the minute), if ever.
    pub last_used_at: Option<Timestamp>,
}

/// Why a new API key was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyApiKeys;

/// A kept response of the OpenAI face's Responses API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// `resp_…`.
    pub id: String,
    /// Whose it is.
    pub user_id: UserId,
    /// The model name as answered (`9787536692930@author`).
    pub model: String,
    /// The request's `instructions`.
    pub instructions: Option<String>,
    /// The response it followed.
    pub previous_id: Option<String>,
    /// The whole exchange answered: earlier turns and this turn's input, oldest first.
    pub exchange: Vec<(crate::domain::Role, String)>,
    /// The answer.
    pub output: String,
    /// `completed` or `incomplete`.
    pub status: String,
    /// The tokens used.
    pub usage: crate::domain::TokenUsage,
    /// The passages of the book's text the model was given.
    pub sources: Vec<crate::domain::Source>,
    /// When it was answered.
    pub created_at: Timestamp,
}

/// A book a user has touched, as the OpenAI face lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentBook {
    /// The book.
    pub isbn: Isbn,
    /// Its latest activity for this user.
    pub at: Timestamp,
    /// Its title when Refbook has the book stored.
    pub title: Option<String>,
}

/// The lower-cased key that carries uniqueness for usernames and emails.
pub fn unique_key(value: &str) -> String {
    value.to_lowercase()
}

/// What generating a reply in a conversation needs to know of it (a light read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTarget {
    /// The conversation.
    pub id: ConversationId,
    /// Its owner.
    pub user_id: UserId,
    /// Its book's ISBN.
    pub isbn: Isbn,
    /// Its persona (`None`: the default).
    pub persona_id: Option<PersonaId>,
}

impl From<&crate::domain::Conversation> for ReplyTarget {
    fn from(c: &crate::domain::Conversation) -> Self {
        Self {
            id: c.id,
            user_id: c.user_id,
            isbn: c.isbn.clone(),
            persona_id: c.persona_id,
        }
    }
}

// A reply's claim, in three types: a [`ReplyClaim`] asks for it; the store answers a
// [`ClaimedReply`] (the question and empty reply it stored) or a [`ClaimRefused`] (why
// not). The SQL store's batch writer carries the three answers, and "no such
// conversation", as one internal `ClaimOutcome`.

/// A claim for a new reply (see [`ReplyStore::claim_reply`](super::ReplyStore::claim_reply)).
#[derive(Debug, Clone)]
pub struct ReplyClaim {
    /// The conversation to lock.
    pub conversation_id: ConversationId,
    /// Its owner, whose parallel replies are counted.
    pub user_id: UserId,
    /// The instance that will generate the reply.
    pub owner: String,
    /// When the claim expires unless renewed.
    pub lease_until: Timestamp,
    /// The most replies the user may have generating at once.
    pub max_per_user: usize,
    /// The question to store with the claim (`None` for a regeneration).
    pub question: Option<String>,
}

/// What a successful claim stored.
#[derive(Debug, Clone)]
pub struct ClaimedReply {
    /// The stored question (when one was given).
    pub question: Option<Message>,
    /// The empty assistant message being generated.
    pub reply: Message,
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// A reply is already being generated in the conversation.
    ConversationBusy,
    /// The user already has the most replies generating at once.
    TooManyForUser,
}

/// The final save of a reply (see [`ReplyStore::finish_reply`](super::ReplyStore::finish_reply)).
#[derive(Debug, Clone, Copy)]
pub struct FinalReply<'a> {
    /// The assistant message.
    pub reply_id: MessageId,
    /// Whose usage it is.
    pub user_id: UserId,
    /// The answer.
    pub content: &'a str,
    /// The reasoning, if any.
    pub reasoning: Option<&'a str>,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// The status to store (normally `finish_reason.status()`).
    pub status: MessageStatus,
    /// Tokens used.
    pub usage: TokenUsage,
    /// The passages the reply was given (empty: none).
    pub sources: &'a [crate::domain::Source],
    /// The ones it cites.
    pub citations: &'a [u32],
}

/// A book's text to store whole (see
/// [`BookTextStore::put_book_text`](super::BookTextStore::put_book_text)).
#[derive(Debug, Clone, Copy)]
pub struct NewBookText<'a> {
    /// The book.
    pub isbn: &'a crate::domain::Isbn,
    /// Whose it is.
    pub scope: crate::domain::TextScope,
    /// The SHA-256 of the file (hex).
    pub sha256: &'a str,
    /// The format it was read as.
    pub format: crate::domain::TextFormat,
    /// The normalised text.
    pub text: &'a str,
    /// Its length in characters.
    pub chars: usize,
    /// Its sections.
    pub sections: &'a [crate::domain::TextSection],
    /// Its chunks.
    pub chunks: &'a [crate::domain::TextChunk],
}
