//! Final saves of replies, many in one transaction.
//!
//! A reply's final save is three statements (the message, the day's usage, the claim
//! released). On SQLite, where one transaction writes at a time, replies that finish
//! together share one transaction — five statements however many replies — instead of
//! queueing for the write lock one by one ("group commit"). Each caller still learns its
//! own outcome, and nothing is answered before its transaction committed.

use std::collections::BTreeMap;

use super::batch::OwnedFinal;
use super::settings::add_usage_sql;
use super::{placeholders, SqlStore};
use crate::domain::{MessageId, UserId};
use crate::store::StoreError;
use crate::timestamp::Timestamp;

impl SqlStore {
    /// Saves `replies` in one transaction. A reply already saved (`total_tokens` set: a
    /// retry after a commit whose answer was lost) adds no usage again; every claim named
    /// is released.
    pub(super) async fn save_finals(
        &self,
        replies: &[OwnedFinal],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if replies.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        // The messages, from a VALUES list (its columns are column1…column10 in both
        // dialects); RETURNING names the ones this save changed.
        let rows = (0..replies.len())
            .map(|i| format!("({})", placeholders(i * 10, 10)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE messages SET content = v.column2, reasoning = v.column3, status = v.column4, \
               finish_reason = v.column5, prompt_tokens = v.column6, \
               completion_tokens = v.column7, total_tokens = v.column8, \
               sources = v.column9, citations = v.column10 \
             FROM (VALUES {rows}) AS v \
             WHERE messages.id = v.column1 AND messages.total_tokens IS NULL \
             RETURNING messages.id AS id"
        );
        let mut query = sqlx::query(&sql);
        for r in replies {
            query = query
                .bind(r.reply_id)
                .bind(r.content.as_str())
                .bind(r.reasoning.as_deref())
                .bind(r.status.as_str())
                .bind(r.finish_reason.as_str())
                .bind(r.usage.prompt_tokens)
                .bind(r.usage.completion_tokens)
                .bind(r.usage.total_tokens)
                .bind(r.sources.as_deref())
                .bind(r.citations.as_deref());
        }
        let saved: Vec<MessageId> = query
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| sqlx::Row::try_get(row, "id"))
            .collect::<Result<_, _>>()?;
        // Usage once per user and day (one upsert may not touch a row twice).
        let mut usage: BTreeMap<UserId, (i64, i64)> = BTreeMap::new();
        for r in replies.iter().filter(|r| saved.contains(&r.reply_id)) {
            let entry = usage.entry(r.user_id).or_default();
            entry.0 += r.usage.prompt_tokens;
            entry.1 += r.usage.completion_tokens;
        }
        if !usage.is_empty() {
            let sql = add_usage_sql(usage.len());
            let day = now.utc_day();
            let mut query = sqlx::query(&sql);
            for (user_id, (prompt, completion)) in &usage {
                query = query
                    .bind(*user_id)
                    .bind(day.as_str())
                    .bind(*prompt)
                    .bind(*completion);
            }
            query.execute(&mut *tx).await?;
        }
        let sql = format!(
            "DELETE FROM reply_claims WHERE message_id IN ({})",
            placeholders(0, replies.len())
        );
        let mut query = sqlx::query(&sql);
        for r in replies {
            query = query.bind(r.reply_id);
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
