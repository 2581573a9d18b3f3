//! Reply claims, many in one transaction (see [`ReplyStore::claim_reply`] for what one
//! claim does, and [`writer`](super::writer) for why they are batched on SQLite).
//!
//! [`ReplyStore::claim_reply`]: crate::store::ReplyStore::claim_reply

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::batch::ClaimOutcome;
use super::conversations::{message_from_row, MESSAGE_COLUMNS};
use super::tx::WriteTx;
use super::{placeholders, Backend, SqlStore};
use crate::domain::{ConversationId, UserId};
use crate::domain::{Message, MessageStatus, Role};
use crate::store::{ClaimRefused, ClaimedReply, ReplyClaim, StoreError};
use crate::timestamp::Timestamp;

/// Settles `generating` replies whose claims match `claims` (a condition on
/// `reply_claims`, with `$1` = now and `$2` = an optional user) and drops those claims.
pub(super) async fn settle(
    tx: &mut WriteTx,
    now: Timestamp,
    user: Option<UserId>,
) -> Result<u64, StoreError> {
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

/// The claims of users' live replies: `(conversation, user, lease until)`.
async fn claims_of(
    tx: &mut super::tx::WriteTx,
    users: &[UserId],
) -> Result<Vec<(ConversationId, UserId, i64)>, StoreError> {
    let sql = format!(
        "SELECT conversation_id, user_id, lease_until FROM reply_claims WHERE user_id IN ({})",
        placeholders(0, users.len())
    );
    let mut query = sqlx::query(&sql);
    for user in users {
        query = query.bind(*user);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("conversation_id")?,
                row.try_get("user_id")?,
                row.try_get("lease_until")?,
            ))
        })
        .collect()
}

impl SqlStore {
    /// Decides and stores `claims` in one transaction, in order: each is refused when its
    /// conversation has a live claim or its user holds `max_per_user` (counting claims
    /// granted earlier in the batch), after settling that user's expired claims.
    pub(super) async fn claim_many(
        &self,
        claims: &[ReplyClaim],
        now: Timestamp,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        let mut tx = self.write().await?;
        // The conversations first (a row lock on PostgreSQL, the write lock on SQLite),
        // only the users' own: marked active, and so known to exist and be theirs.
        let pairs = (0..claims.len())
            .map(|i| format!("({})", placeholders(1 + i * 2, 2)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE conversations SET updated_at = $1 \
             WHERE (id, user_id) IN (VALUES {pairs}) RETURNING id"
        );
        let mut query = sqlx::query(&sql).bind(now.millis());
        for claim in claims {
            query = query.bind(claim.conversation_id).bind(claim.user_id);
        }
        let mut owned = HashSet::new();
        for row in query.fetch_all(&mut *tx).await? {
            owned.insert(row.try_get::<ConversationId, _>("id")?);
        }
        let mut users: Vec<UserId> = claims.iter().map(|c| c.user_id).collect();
        users.sort_unstable();
        users.dedup();
        if self.backend() == Backend::Postgres {
            // Then the users' rows, so that claims in *different* conversations of one
            // user queue too and the count below cannot be raced past. (SQLite's write
            // transaction already serialises every claim.)
            let sql = format!(
                "UPDATE users SET updated_at = updated_at WHERE id IN ({})",
                placeholders(0, users.len())
            );
            let mut query = sqlx::query(&sql);
            for user in &users {
                query = query.bind(*user);
            }
            query.execute(&mut *tx).await?;
        }
        let mut live = claims_of(&mut tx, &users).await?;
        let expired: HashSet<UserId> = live
            .iter()
            .filter(|(_, _, until)| *until < now.millis())
            .map(|(_, user, _)| *user)
            .collect();
        if !expired.is_empty() {
            // Those users' replies whose owner died: settled here rather than waiting for
            // the sweep, so they do not count against the cap.
            for user in &expired {
                settle(&mut tx, now, Some(*user)).await?;
            }
            live = claims_of(&mut tx, &users).await?;
        }
        let mut busy: HashSet<ConversationId> = live
            .iter()
            .map(|(conversation, _, _)| *conversation)
            .collect();
        let mut held: HashMap<UserId, usize> = HashMap::new();
        for (_, user, _) in &live {
            *held.entry(*user).or_default() += 1;
        }
        let mut outcomes = Vec::with_capacity(claims.len());
        let mut granted = Vec::new();
        for (at, claim) in claims.iter().enumerate() {
            let count = held.entry(claim.user_id).or_default();
            outcomes.push(if !owned.contains(&claim.conversation_id) {
                ClaimOutcome::NotFound
            } else if busy.contains(&claim.conversation_id) {
                ClaimOutcome::Refused(ClaimRefused::ConversationBusy)
            } else if *count >= claim.max_per_user.max(1) {
                ClaimOutcome::Refused(ClaimRefused::TooManyForUser)
            } else {
                *count += 1;
                busy.insert(claim.conversation_id);
                granted.push(at);
                ClaimOutcome::NotFound // replaced below, once stored
            });
        }
        if !granted.is_empty() {
            let stored = self.store_granted(&mut tx, claims, &granted, now).await?;
            for (at, reply) in granted.into_iter().zip(stored) {
                outcomes[at] = ClaimOutcome::Claimed(Box::new(reply));
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Stores the questions, empty replies and claims of the granted claims (`granted`:
    /// their indexes in `claims`); the stored messages in the same order.
    async fn store_granted(
        &self,
        tx: &mut super::tx::WriteTx,
        claims: &[ReplyClaim],
        granted: &[usize],
        now: Timestamp,
    ) -> Result<Vec<ClaimedReply>, StoreError> {
        // Question before reply, in VALUES order: ids follow it, as positions assume.
        let mut rows = Vec::new();
        let mut binds: Vec<(ConversationId, Role, &str, MessageStatus)> = Vec::new();
        for &at in granted {
            let claim = &claims[at];
            if let Some(question) = &claim.question {
                binds.push((
                    claim.conversation_id,
                    Role::User,
                    question,
                    MessageStatus::Complete,
                ));
            }
            binds.push((
                claim.conversation_id,
                Role::Assistant,
                "",
                MessageStatus::Generating,
            ));
        }
        for i in 0..binds.len() {
            // `$1` is the time, shared by every row.
            rows.push(format!("({}, $1)", placeholders(1 + i * 4, 4)));
        }
        let sql = format!(
            "INSERT INTO messages (conversation_id, role, content, status, created_at) \
             VALUES {} RETURNING {MESSAGE_COLUMNS}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(now.millis());
        for (conversation, role, content, status) in &binds {
            query = query
                .bind(*conversation)
                .bind(role.as_str())
                .bind(*content)
                .bind(status.as_str());
        }
        let mut by_turn: HashMap<(ConversationId, Role), Message> = HashMap::new();
        for row in query.fetch_all(&mut **tx).await? {
            let message = message_from_row(&row)?;
            by_turn.insert((message.conversation_id, message.role), message);
        }
        let mut stored = Vec::with_capacity(granted.len());
        for &at in granted {
            let conversation = claims[at].conversation_id;
            let reply = by_turn
                .remove(&(conversation, Role::Assistant))
                .ok_or_else(|| StoreError::Corrupt("a claimed reply was not stored".into()))?;
            let question = by_turn.remove(&(conversation, Role::User));
            stored.push(ClaimedReply { question, reply });
        }
        let rows = (0..granted.len())
            .map(|i| format!("({})", placeholders(i * 5, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO reply_claims (conversation_id, user_id, message_id, owner, lease_until) \
             VALUES {rows}"
        );
        let mut query = sqlx::query(&sql);
        for (&at, claimed) in granted.iter().zip(&stored) {
            let claim = &claims[at];
            query = query
                .bind(claim.conversation_id)
                .bind(claim.user_id)
                .bind(claimed.reply.id)
                .bind(claim.owner.as_str())
                .bind(claim.lease_until.millis());
        }
        query.execute(&mut **tx).await?;
        Ok(stored)
    }
}
