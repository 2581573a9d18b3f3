//! What travels to the SQLite batch writer ([`writer`](super::writer)): the two kinds of
//! batched write, their outcomes, and the store's side of them ([`BatchWrites`]), so that
//! the writer needs nothing of the store but this.

use async_trait::async_trait;

use crate::domain::{FinishReason, MessageId, MessageStatus, TokenUsage, UserId};
use crate::store::{ClaimRefused, ClaimedReply, FinalReply, ReplyClaim, StoreError};
use crate::timestamp::Timestamp;

/// What became of one claim.
#[derive(Debug, Clone)]
pub(super) enum ClaimOutcome {
    /// Claimed: the stored question and empty reply.
    Claimed(Box<ClaimedReply>),
    /// Refused (busy conversation, or the user's cap).
    Refused(ClaimRefused),
    /// Not the user's conversation (or gone).
    NotFound,
}

/// A final save, owned (to travel to the writer).
#[derive(Debug, Clone)]
pub(super) struct OwnedFinal {
    pub reply_id: MessageId,
    pub user_id: UserId,
    pub content: String,
    pub reasoning: Option<String>,
    pub finish_reason: FinishReason,
    pub status: MessageStatus,
    pub usage: TokenUsage,
    /// The sources as JSON (`None`: none).
    pub sources: Option<String>,
    /// The citations as JSON (`None` with no sources).
    pub citations: Option<String>,
}

impl From<FinalReply<'_>> for OwnedFinal {
    fn from(r: FinalReply<'_>) -> Self {
        Self {
            reply_id: r.reply_id,
            user_id: r.user_id,
            content: r.content.to_owned(),
            reasoning: r.reasoning.map(str::to_owned),
            finish_reason: r.finish_reason,
            status: r.status,
            usage: r.usage,
            sources: (!r.sources.is_empty())
                .then(|| serde_json::to_string(r.sources).unwrap_or_default()),
            citations: (!r.sources.is_empty())
                .then(|| serde_json::to_string(r.citations).unwrap_or_default()),
        }
    }
}

/// The writes the batch writer makes, many at a time: implemented by the store, handed
/// to the writer as a handle that does not own it.
#[async_trait]
pub(super) trait BatchWrites: Clone + Send + Sync + 'static {
    /// Claims `claims` in one transaction; an outcome for each, in order.
    async fn write_claims(
        &self,
        claims: &[ReplyClaim],
        now: Timestamp,
    ) -> Result<Vec<ClaimOutcome>, StoreError>;

    /// Undoes a claim whose caller went away: deletes its empty reply (and question).
    async fn undo_claim(
        &self,
        reply: MessageId,
        question: Option<MessageId>,
    ) -> Result<(), StoreError>;

    /// Saves `finals` in one transaction.
    async fn write_finals(&self, finals: &[OwnedFinal], now: Timestamp) -> Result<(), StoreError>;
}
