//! Reply claims, checkpoints, the final save and the sweep on SQL (see
//! [`ReplyStore`](crate::store::ReplyStore)).
//!
//! Invariant: a message is `generating` exactly while a `reply_claims` row names it. The
//! claim and the empty reply are written in one transaction, and the final save updates
//! the message and deletes the claim in one transaction, so a sweep that settles
//! `generating` messages without a live claim never touches a reply someone owns.

use async_trait::async_trait;

use super::batch::{BatchWrites, ClaimOutcome, OwnedFinal};
use super::claims::settle;
use super::SqlStore;
use crate::domain::{ConversationId, MessageId};
use crate::store::{ClaimRefused, ClaimedReply, FinalReply, ReplyClaim, ReplyStore, StoreError};
use crate::timestamp::Timestamp;

#[async_trait]
impl ReplyStore for SqlStore {
    async fn claim_reply(
        &self,
        claim: ReplyClaim,
        now: Timestamp,
    ) -> Result<Result<ClaimedReply, ClaimRefused>, StoreError> {
        let outcome = match &self.writer {
            Some(writer) => writer.claim(claim).await?,
            None => self
                .claim_many(&[claim], now)
                .await?
                .pop()
                .ok_or_else(|| StoreError::Corrupt("a claim went unanswered".into()))?,
        };
        match outcome {
            ClaimOutcome::Claimed(claimed) => Ok(Ok(*claimed)),
            ClaimOutcome::Refused(refused) => Ok(Err(refused)),
            ClaimOutcome::NotFound => Err(StoreError::NotFound),
        }
    }

    async fn abandon_reply(
        &self,
        reply_id: MessageId,
        question_id: Option<MessageId>,
    ) -> Result<(), StoreError> {
        // The claim goes with the reply (ON DELETE CASCADE).
        sqlx::query("DELETE FROM messages WHERE id = $1 OR id = $2")
            .bind(reply_id)
            .bind(question_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkpoint_reply(
        &self,
        reply_id: MessageId,
        owner: &str,
        text: Option<(&str, Option<&str>)>,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE reply_claims SET lease_until = $3 WHERE message_id = $1 AND owner = $2",
        )
        .bind(reply_id)
        .bind(owner)
        .bind(lease_until.millis())
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        if let (true, Some((content, reasoning))) = (renewed, text) {
            sqlx::query(
                "UPDATE messages SET content = $2, reasoning = $3 \
                 WHERE id = $1 AND status = 'generating'",
            )
            .bind(reply_id)
            .bind(content)
            .bind(reasoning)
            .execute(&self.pool)
            .await?;
        }
        Ok(renewed)
    }

    async fn finish_reply(&self, reply: FinalReply<'_>, now: Timestamp) -> Result<(), StoreError> {
        let reply = OwnedFinal::from(reply);
        match &self.writer {
            Some(writer) => writer.save_final(reply).await,
            None => self.save_finals(&[reply], now).await,
        }
    }

    async fn settle_expired_replies(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut settled = settle(&mut tx, now, None).await?;
        // Replies left `generating` with no claim at all (written before claims existed).
        settled += sqlx::query(
            "UPDATE messages SET status = 'partial', finish_reason = 'interrupted' \
             WHERE status = 'generating' \
               AND NOT EXISTS (SELECT 1 FROM reply_claims c WHERE c.message_id = messages.id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(settled)
    }

    async fn delete_messages(
        &self,
        conversation_id: ConversationId,
        ids: &[MessageId],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = super::placeholders(1, ids.len());
        let sql =
            format!("DELETE FROM messages WHERE conversation_id = $1 AND id IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(conversation_id);
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl BatchWrites for SqlStore {
    async fn write_claims(
        &self,
        claims: &[ReplyClaim],
        now: Timestamp,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        self.claim_many(claims, now).await
    }

    async fn undo_claim(
        &self,
        reply: MessageId,
        question: Option<MessageId>,
    ) -> Result<(), StoreError> {
        self.abandon_reply(reply, question).await
    }

    async fn write_finals(&self, finals: &[OwnedFinal], now: Timestamp) -> Result<(), StoreError> {
        self.save_finals(finals, now).await
    }
}
