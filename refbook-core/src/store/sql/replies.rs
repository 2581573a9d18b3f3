//! Reply claims, checkpoints, the final save and the sweep on SQL (see
//! [`ReplyStore`](crate::store::ReplyStore)).
//!
//! Invariant: a message is `generating` exactly while a `reply_claims` row names it. The
//! claim and the empty reply are written in one transaction, and the final save updates
//! the message and deletes the claim in one transaction, so a sweep that settles
//! `generating` messages without a live claim never touches a reply someone owns.

use async_trait::async_trait;
use sqlx::Row;

use super::conversations::{message_from_row, MESSAGE_COLUMNS};
use super::final_saves::OwnedFinal;
use super::tx::WriteTx;
use super::SqlStore;
use crate::chat::{MessageStatus, Role};
use crate::store::{ClaimRefused, ClaimedReply, FinalReply, ReplyClaim, ReplyStore, StoreError};
use crate::timestamp::Timestamp;

/// Inserts a message in a transaction and returns it as stored.
async fn insert_message(
    tx: &mut WriteTx,
    conversation_id: i64,
    role: Role,
    content: &str,
    status: MessageStatus,
    now: Timestamp,
) -> Result<crate::chat::Message, StoreError> {
    let row = sqlx::query(&format!(
        "INSERT INTO messages (conversation_id, role, content, status, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(conversation_id)
    .bind(role.as_str())
    .bind(content)
    .bind(status.as_str())
    .bind(now.millis())
    .fetch_one(&mut **tx)
    .await?;
    message_from_row(&row)
}

/// Settles `generating` replies whose claims match `claims` (a condition on
/// `reply_claims`, with `$1` = now and `$2` = an optional user) and drops those claims.
async fn settle(tx: &mut WriteTx, now: Timestamp, user: Option<i64>) -> Result<u64, StoreError> {
    let claims = "lease_until < $1 AND ($2 IS NULL OR user_id = $2)";
    let settled = sqlx::query(&format!(
        "UPDATE messages SET status = 'partial', finish_reason = 'interrupted' \
         WHERE status = 'generating' AND id IN (SELECT message_id FROM reply_claims WHERE {claims})"
    ))
    .bind(now.millis())
    .bind(user)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(&format!("DELETE FROM reply_claims WHERE {claims}"))
        .bind(now.millis())
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(settled)
}

impl SqlStore {
    /// The claim's transaction (see [`ReplyStore::claim_reply`]), run where writes run.
    async fn claim_now(
        &self,
        claim: ReplyClaim<'_>,
        now: Timestamp,
    ) -> Result<Result<ClaimedReply, ClaimRefused>, StoreError> {
        let mut tx = self.write().await?;
        // The conversation row first: a row lock on PostgreSQL (the write lock on SQLite)
        // that every claim in it queues behind, in the same order as other writers.
        let touched =
            sqlx::query("UPDATE conversations SET updated_at = $3 WHERE id = $1 AND user_id = $2")
                .bind(claim.conversation_id)
                .bind(claim.user_id)
                .bind(now.millis())
                .execute(&mut *tx)
                .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Then the user's row, so that claims in *different* conversations of one user
        // queue too and the per-user count below cannot be raced past. (SQLite's write
        // transaction already serialises every claim.)
        if self.backend() == super::Backend::Postgres {
            sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(claim.user_id)
                .execute(&mut *tx)
                .await?;
        }
        let claims_of_user = || {
            sqlx::query("SELECT conversation_id, lease_until FROM reply_claims WHERE user_id = $1")
                .bind(claim.user_id)
        };
        let mut live = claims_of_user().fetch_all(&mut *tx).await?;
        let mut expired = false;
        for row in &live {
            expired |= row.try_get::<i64, _>("lease_until")? < now.millis();
        }
        if expired {
            // The user's own replies whose owner died: settled here rather than waiting
            // for the sweep, so they do not count against the cap.
            settle(&mut tx, now, Some(claim.user_id)).await?;
            live = claims_of_user().fetch_all(&mut *tx).await?;
        }
        let mut busy = false;
        for row in &live {
            busy |= row.try_get::<i64, _>("conversation_id")? == claim.conversation_id;
        }
        let refused = if busy {
            Some(ClaimRefused::ConversationBusy)
        } else if live.len() >= claim.max_per_user.max(1) {
            Some(ClaimRefused::TooManyForUser)
        } else {
            None
        };
        if let Some(refused) = refused {
            tx.commit().await?;
            return Ok(Err(refused));
        }
        let question = match claim.question {
            Some(text) => Some(
                insert_message(
                    &mut tx,
                    claim.conversation_id,
                    Role::User,
                    text,
                    MessageStatus::Complete,
                    now,
                )
                .await?,
            ),
            None => None,
        };
        let reply = insert_message(
            &mut tx,
            claim.conversation_id,
            Role::Assistant,
            "",
            MessageStatus::Generating,
            now,
        )
        .await?;
        sqlx::query(
            "INSERT INTO reply_claims (conversation_id, user_id, message_id, owner, lease_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(claim.conversation_id)
        .bind(claim.user_id)
        .bind(reply.id)
        .bind(claim.owner)
        .bind(claim.lease_until.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(ClaimedReply { question, reply }))
    }
}

#[async_trait]
impl ReplyStore for SqlStore {
    async fn claim_reply(
        &self,
        claim: ReplyClaim<'_>,
        now: Timestamp,
    ) -> Result<Result<ClaimedReply, ClaimRefused>, StoreError> {
        let store = self.clone();
        let (owner, question) = (claim.owner.to_owned(), claim.question.map(str::to_owned));
        self.on_writer(async move {
            let claim = ReplyClaim {
                owner: &owner,
                question: question.as_deref(),
                ..claim
            };
            store.claim_now(claim, now).await
        })
        .await
    }

    async fn abandon_reply(
        &self,
        reply_id: i64,
        question_id: Option<i64>,
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
        reply_id: i64,
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

    async fn delete_messages(&self, conversation_id: i64, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = (2..ids.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
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
