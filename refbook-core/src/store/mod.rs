//! Persistence: the [`Store`] seam and its records.
//!
//! The seam is split by subject: [`UserStore`], [`SessionStore`], [`ApiKeyStore`],
//! [`SettingsStore`], [`UsageStore`], [`BookStore`], [`ChatStore`], [`ReplyStore`],
//! [`PersonaStore`], [`CollectionStore`], [`BookTextStore`], [`ReadingStore`] and
//! [`GuideStore`]; [`Store`] is all thirteen. [`SqlStore`] implements it on SQLite and
//! PostgreSQL through sqlx, with one set of queries and one migration set per dialect.

mod error;
mod reading;
mod records;
mod sql;

use async_trait::async_trait;

pub use error::StoreError;
pub use reading::{GuideStore, ReadingStore};
pub use records::{
    unique_key, ApiKeyRecord, ClaimRefused, ClaimedReply, FinalReply, NewBookText, NewUser,
    ProfileChange, RecentBook, RefreshOutcome, ReplyClaim, ReplyTarget, StoredResponse,
    TooManyApiKeys, UserRecord,
};
pub use sql::{Backend, SqlStore};

use crate::domain::{
    Book, BookTextInfo, Conversation, ConversationId, Cover, Isbn, Message, MessageId, NewMessage,
    Persona, PersonaId, StoredBook, TextChunk, TextScope, TextSection, UserId,
};
use crate::timestamp::Timestamp;

/// Users and their profiles.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `StoreError::Conflict` names the taken field.
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<UserRecord, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this lower-cased username.
    async fn user_by_username_key(&self, key: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this lower-cased email.
    async fn user_by_email_key(&self, key: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this WeChat openid.
    async fn user_by_openid(&self, openid: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Applies the present fields of `change`; `NotFound` if the user is gone.
    async fn update_profile(
        &self,
        id: UserId,
        change: ProfileChange,
        now: Timestamp,
    ) -> Result<UserRecord, StoreError>;
    /// Replaces the password hash.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes the user and, by cascade, everything that is theirs. `false` if absent.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;
}

/// Login sessions and their rotating refresh tokens (stored as SHA-256 hashes).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a login session with its first refresh token; returns the session id.
    async fn create_session(
        &self,
        user_id: UserId,
        refresh_hash: &str,
        refresh_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, StoreError>;
    /// The user owning the live session `session_id`, if the session exists and is theirs.
    async fn session_user(
        &self,
        session_id: i64,
        user_id: UserId,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Exchanges a refresh token for a new one in the same session, atomically. A token that
    /// was already exchanged ends its whole session (reuse detection).
    /// A token exchanged less than `reuse_grace_ms` ago is exchanged again (a retried or
    /// doubled request) instead.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        now: Timestamp,
        reuse_grace_ms: i64,
    ) -> Result<RefreshOutcome, StoreError>;
    /// The session a refresh token belongs to, with its owner: `(session_id, user_id)`.
    async fn session_of_refresh_token(
        &self,
        hash: &str,
    ) -> Result<Option<(i64, UserId)>, StoreError>;
    /// Ends one session of the user (its tokens stop working). `false` if absent.
    async fn delete_session(&self, session_id: i64, user_id: UserId) -> Result<bool, StoreError>;
    /// Ends every session of the user but `keep`; returns how many ended.
    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        keep: Option<i64>,
    ) -> Result<u64, StoreError>;
    /// Forgets sessions whose refresh tokens all expired before `now`.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// Personal API keys, stored as SHA-256 hashes.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key of the user unless they already hold `max_per_user` (checked and
    /// inserted in one transaction).
    async fn create_api_key(
        &self,
        user_id: UserId,
        name: &str,
        key_hash: &str,
        max_per_user: usize,
        now: Timestamp,
    ) -> Result<Result<ApiKeyRecord, TooManyApiKeys>, StoreError>;
    /// The user's keys, newest first.
    async fn api_keys(&self, user_id: UserId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Deletes one of the user's keys. `false` if absent (or another user's).
    async fn delete_api_key(&self, id: i64, user_id: UserId) -> Result<bool, StoreError>;
    /// The key with this hash and its user; records the use when the last one recorded
    /// is older than `touch_before` (so a busy key is not written on every request).
    async fn api_key_user(
        &self,
        key_hash: &str,
        now: Timestamp,
        touch_before: Timestamp,
    ) -> Result<Option<(ApiKeyRecord, UserRecord)>, StoreError>;
}

/// Small named values the server keeps (the generated JWT secret).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Stores `candidate` under `key` unless a value is there; returns the value kept.
    /// Safe when several servers start at once: all get the same value.
    async fn setting_or_init(&self, key: &str, candidate: &str) -> Result<String, StoreError>;
}

/// Token usage per user and UTC day.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds tokens to the user's count for `day` (`YYYY-MM-DD`).
    async fn add_usage(
        &self,
        user_id: UserId,
        day: &str,
        prompt_tokens: i64,
        completion_tokens: i64,
    ) -> Result<(), StoreError>;
    /// Total tokens the user used on `day`.
    async fn usage_on(&self, user_id: UserId, day: &str) -> Result<i64, StoreError>;
}

/// Books, their covers, and the local catalogue.
#[async_trait]
pub trait BookStore: Send + Sync {
    /// The stored book with this ISBN-13, however old.
    async fn book(&self, isbn: &Isbn) -> Result<Option<StoredBook>, StoreError>;
    /// Stores (or replaces) a book fetched at `fetched_at`; a changed cover URL drops the
    /// kept cover image.
    async fn upsert_book(&self, book: &Book, fetched_at: Timestamp) -> Result<(), StoreError>;
    /// Stored books whose title or authors contain `query` (case-insensitive for ASCII),
    /// most recently updated first: `(total count, page)`.
    async fn search_books(
        &self,
        query: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Book>), StoreError>;
    /// The kept cover image of a book.
    async fn cover(&self, isbn: &Isbn) -> Result<Option<Cover>, StoreError>;
    /// Keeps a cover image (the book must be stored).
    async fn put_cover(&self, isbn: &Isbn, cover: &Cover, now: Timestamp)
        -> Result<(), StoreError>;
    /// Adds or replaces catalogue entries, all or none; returns how many.
    async fn import_catalog(&self, books: &[Book], now: Timestamp) -> Result<u64, StoreError>;
    /// The catalogue entry for an ISBN-13.
    async fn catalog_book(&self, isbn: &Isbn) -> Result<Option<Book>, StoreError>;
}

/// Conversations and their messages. Every conversation access names its owner.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Creates a conversation about a stored book. `origin` is `api` or `chat_stream`.
    async fn create_conversation(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        title: &str,
        persona_id: Option<PersonaId>,
        origin: &str,
        now: Timestamp,
    ) -> Result<Conversation, StoreError>;
    /// The user's conversation with this id.
    async fn conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<Option<Conversation>, StoreError>;
    /// What generating a reply needs of the user's conversation (one light read).
    async fn reply_target(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<Option<ReplyTarget>, StoreError>;
    /// The conversation's newest finished or stopped messages with text, oldest first:
    /// as many as are needed to hold `max_chars` characters (the one crossing the limit
    /// included), for a prompt's history.
    async fn history_tail(
        &self,
        conversation_id: ConversationId,
        max_chars: i64,
    ) -> Result<Vec<Message>, StoreError>;
    /// The user's conversations (optionally about one book), most recently active first:
    /// `(count, page)`.
    async fn conversations(
        &self,
        user_id: UserId,
        isbn: Option<&Isbn>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Conversation>), StoreError>;
    /// The user's stateless-endpoint conversation about `isbn`, created (titled `title`)
    /// when missing; however many requests race, one conversation results. The flag says
    /// whether this call created it.
    async fn stateless_conversation(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        title: &str,
        now: Timestamp,
    ) -> Result<(Conversation, bool), StoreError>;
    /// Deletes the conversation if it has no messages and no reply claim (a conversation
    /// created for a request that was then refused). `true` if deleted.
    async fn delete_conversation_if_empty(&self, id: ConversationId) -> Result<bool, StoreError>;
    /// Changes title and/or persona (`Some(None)` clears the persona).
    async fn update_conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
        title: Option<&str>,
        persona_id: Option<Option<PersonaId>>,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;
    /// Deletes a conversation and its messages. `false` if absent.
    async fn delete_conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<bool, StoreError>;
    /// Appends a message and marks the conversation active.
    async fn add_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
        now: Timestamp,
    ) -> Result<Message, StoreError>;
    /// The conversation's messages, oldest first.
    async fn messages(&self, conversation_id: ConversationId) -> Result<Vec<Message>, StoreError>;
    /// One message of the conversation.
    async fn message(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError>;
    /// Deletes one message. `false` if absent.
    async fn delete_message(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<bool, StoreError>;
    /// The books the user has conversations about, collected, marked reading progress
    /// in, or that have a text the user can read (the library's or their own copy), each
    /// with its latest activity and its stored title, most recent first.
    async fn recent_books(
        &self,
        user_id: UserId,
        limit: i64,
    ) -> Result<Vec<RecentBook>, StoreError>;
}

/// The life of a generated reply: its claim (conversation lock, per-user cap, the owner's
/// lease), checkpoints that renew the lease, the final save, and the sweep that settles
/// replies whose owner died. Claims live in the database so they hold across processes.
#[async_trait]
pub trait ReplyStore: Send + Sync {
    /// In one transaction: settles the user's expired claims, refuses when the
    /// conversation has a live claim or the user holds `max_per_user`, else stores the
    /// question (if any) and an empty `generating` assistant message and claims both for
    /// `owner` until `lease_until`. `NotFound` when the conversation is gone.
    async fn claim_reply(
        &self,
        claim: ReplyClaim,
        now: Timestamp,
    ) -> Result<Result<ClaimedReply, ClaimRefused>, StoreError>;
    /// Undoes a claim whose model refused before answering: deletes the empty reply, the
    /// question stored with it (if any) and the claim.
    async fn abandon_reply(
        &self,
        reply_id: MessageId,
        question_id: Option<MessageId>,
    ) -> Result<(), StoreError>;
    /// Stores the text so far (when given) and renews `owner`'s lease. `false` when the
    /// claim is no longer `owner`'s (it expired and was settled, or the reply is gone).
    async fn checkpoint_reply(
        &self,
        reply_id: MessageId,
        owner: &str,
        text: Option<(&str, Option<&str>)>,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The final save, in one transaction: text, status, finish reason and usage; the
    /// user's usage for the day (once, however often this is retried); the claim released.
    async fn finish_reply(&self, reply: FinalReply<'_>, now: Timestamp) -> Result<(), StoreError>;
    /// Settles replies whose lease expired before `now` (their owner died) as `partial`
    /// with finish reason `interrupted`, and drops their claims. Live leases are never
    /// touched. Returns how many replies were settled.
    async fn settle_expired_replies(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Deletes these messages of the conversation at once (the replies a regeneration
    /// replaces).
    async fn delete_messages(
        &self,
        conversation_id: ConversationId,
        ids: &[MessageId],
    ) -> Result<(), StoreError>;
}

/// Personas: built-ins and each user's own.
#[async_trait]
pub trait PersonaStore: Send + Sync {
    /// Built-ins, then the user's own, oldest first.
    async fn personas(&self, user_id: UserId) -> Result<Vec<Persona>, StoreError>;
    /// A persona the user may use (built in or theirs).
    async fn persona(&self, id: PersonaId, user_id: UserId) -> Result<Option<Persona>, StoreError>;
    /// A built-in persona by key.
    async fn builtin_persona(&self, key: &str) -> Result<Option<Persona>, StoreError>;
    /// Creates a persona of the user's.
    async fn create_persona(
        &self,
        user_id: UserId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> Result<Persona, StoreError>;
    /// Deletes one of the user's own personas. `false` if absent.
    async fn delete_persona(&self, id: PersonaId, user_id: UserId) -> Result<bool, StoreError>;
}

/// Books a user collected.
#[async_trait]
pub trait CollectionStore: Send + Sync {
    /// Collects a stored book (idempotent); returns when it was first collected.
    async fn collect(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError>;
    /// The user's collection, newest first: `(count, page)`.
    async fn collection(
        &self,
        user_id: UserId,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<(Book, Timestamp)>), StoreError>;
    /// Removes a book from the collection. `false` if it was not there.
    async fn uncollect(&self, user_id: UserId, isbn: &Isbn) -> Result<bool, StoreError>;
}

/// Books' own texts: the library's, and readers' own copies. A text is written whole in
/// state `indexing` beside the one serving, and becomes `ready` (dropping the old one) in
/// one step, so search only ever sees a complete text.
#[async_trait]
pub trait BookTextStore: Send + Sync {
    /// Stores a text whole — with its sections and chunks — in state `indexing`, in place
    /// of any other text of the book in the same scope that is not serving yet. A reader's
    /// copy needs the reader to exist (`NotFound`).
    async fn put_book_text(
        &self,
        text: NewBookText<'_>,
        now: Timestamp,
    ) -> Result<BookTextInfo, StoreError>;
    /// Makes an `indexing` text the serving one, dropping the text it replaces; `false`
    /// when it is not `indexing` (removed or replaced meanwhile).
    async fn finish_book_text(&self, text_id: i64) -> Result<bool, StoreError>;
    /// Marks an `indexing` text `failed`, with the reason.
    async fn fail_book_text(&self, text_id: i64, error: &str) -> Result<(), StoreError>;
    /// The serving text of a book in one scope.
    async fn book_text(
        &self,
        isbn: &Isbn,
        scope: TextScope,
    ) -> Result<Option<BookTextInfo>, StoreError>;
    /// The newest text of a book in one scope, whatever its state.
    async fn latest_book_text(
        &self,
        isbn: &Isbn,
        scope: TextScope,
    ) -> Result<Option<BookTextInfo>, StoreError>;
    /// The serving text a reader's conversations use: their own copy, else the library's.
    async fn reader_book_text(
        &self,
        isbn: &Isbn,
        reader: UserId,
    ) -> Result<Option<BookTextInfo>, StoreError>;
    /// Every text of one scope, whatever its state, by ISBN.
    async fn book_texts(&self, scope: TextScope) -> Result<Vec<BookTextInfo>, StoreError>;
    /// The sections and chunks of a stored text, in reading order.
    async fn book_text_parts(
        &self,
        text_id: i64,
    ) -> Result<(Vec<TextSection>, Vec<TextChunk>), StoreError>;
    /// Deletes the texts of a book in one scope (serving or not); `false` when there were
    /// none.
    async fn delete_book_text(&self, isbn: &Isbn, scope: TextScope) -> Result<bool, StoreError>;
    /// Texts with work left, oldest first, whose lease has run out by `now`: `indexing`
    /// ones, and serving ones without every vector of `model` (when there is a model).
    async fn texts_to_index(
        &self,
        model: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<BookTextInfo>, StoreError>;
    /// Takes the lease on a text's work until `until`; `false` when a lease still runs at
    /// `now` (another worker has it).
    async fn lease_book_text(
        &self,
        text_id: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Extends the lease its holder has.
    async fn renew_book_text_lease(&self, text_id: i64, until: Timestamp)
        -> Result<(), StoreError>;
    /// Readies a text for vectors of `model`: the vectors of any other model are dropped.
    /// Returns how many chunks (from the first) have one.
    async fn start_text_vectors(&self, text_id: i64, model: &str) -> Result<usize, StoreError>;
    /// Stores the vectors of chunks `first..first + vectors.len()`.
    async fn put_text_vectors(
        &self,
        text_id: i64,
        first: usize,
        vectors: &[Vec<u8>],
    ) -> Result<(), StoreError>;
    /// A text's stored vectors, in chunk order.
    async fn text_vectors(&self, text_id: i64) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// Responses of the OpenAI face's Responses API kept for follow-ups.
#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Keeps a response.
    async fn insert_response(&self, response: &StoredResponse) -> Result<(), StoreError>;
    /// One of the user's responses.
    async fn response(
        &self,
        user_id: UserId,
        id: &str,
    ) -> Result<Option<StoredResponse>, StoreError>;
    /// Deletes one of the user's responses; `false` when there was none.
    async fn delete_response(&self, user_id: UserId, id: &str) -> Result<bool, StoreError>;
}

/// Everything Refbook persists; implemented by [`SqlStore`].
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + ApiKeyStore
    + SettingsStore
    + UsageStore
    + BookStore
    + ChatStore
    + ReplyStore
    + PersonaStore
    + CollectionStore
    + BookTextStore
    + ReadingStore
    + GuideStore
    + ResponseStore
{
    /// Answers when the database takes writes (readiness): a small real write, so a full
    /// disk or a read-only server is not reported ready.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes connections, waiting for work in flight (at shutdown).
    async fn close(&self) {}
}
