//! Conversations and messages on SQL.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::books::list;
use super::SqlStore;
use crate::domain::{
    BookBrief, Conversation, FinishReason, Message, MessageStatus, NewMessage, Role, TokenUsage,
};
use crate::domain::{ConversationId, Isbn, MessageId, PersonaId, UserId};
use crate::store::{ChatStore, RecentBook, ReplyTarget, StoreError};
use crate::timestamp::Timestamp;

const CONVERSATION_SELECT: &str = "SELECT c.id, c.user_id, c.isbn, c.title, c.persona_id, \
    c.created_at, c.updated_at, b.title AS book_title, b.authors AS authors, \
    b.cover_url AS book_cover, \
    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count \
    FROM conversations c JOIN books b ON b.isbn = c.isbn";

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, role, content, reasoning, status, \
    finish_reason, prompt_tokens, completion_tokens, total_tokens, sources, citations, created_at";

/// A JSON column (`NULL`: the default value).
fn json_column<T: serde::de::DeserializeOwned + Default>(
    row: &AnyRow,
    column: &str,
) -> Result<T, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    match text {
        None => Ok(T::default()),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
        }
    }
}

fn conversation_from_row(row: &AnyRow) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        isbn: row.try_get("isbn")?,
        title: row.try_get("title")?,
        persona_id: row.try_get("persona_id")?,
        book: BookBrief {
            title: row.try_get("book_title")?,
            author: list(row, "authors")?.join(", "),
            cover_url: row.try_get("book_cover")?,
        },
        message_count: row.try_get("message_count")?,
        last_message: None,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
    })
}

pub(super) fn message_from_row(row: &AnyRow) -> Result<Message, StoreError> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    let prompt: Option<i64> = row.try_get("prompt_tokens")?;
    let completion: Option<i64> = row.try_get("completion_tokens")?;
    let total: Option<i64> = row.try_get("total_tokens")?;
    let finish: Option<String> = row.try_get("finish_reason")?;
    Ok(Message {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        content: row.try_get("content")?,
        reasoning: row.try_get("reasoning")?,
        status: MessageStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        finish_reason: finish
            .map(|f| {
                FinishReason::parse(&f).ok_or_else(|| StoreError::Corrupt(format!("finish {f}")))
            })
            .transpose()?,
        usage: match (prompt, completion, total) {
            (Some(prompt_tokens), Some(completion_tokens), Some(total_tokens)) => {
                Some(TokenUsage {
                    prompt_tokens,
                    completion_tokens,
                    total_tokens,
                })
            }
            _ => None,
        },
        sources: json_column(row, "sources")?,
        citations: json_column(row, "citations")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

impl SqlStore {
    /// Fills `last_message` of each conversation with one query.
    async fn with_last_messages(
        &self,
        mut list: Vec<Conversation>,
    ) -> Result<Vec<Conversation>, StoreError> {
        if list.is_empty() {
            return Ok(list);
        }
        let placeholders = super::placeholders(0, list.len());
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN \
             (SELECT MAX(id) FROM messages WHERE conversation_id IN ({placeholders}) GROUP BY conversation_id)"
        );
        let mut query = sqlx::query(&sql);
        for conversation in &list {
            query = query.bind(conversation.id);
        }
        let mut last: HashMap<ConversationId, Message> = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let message = message_from_row(&row)?;
            last.insert(message.conversation_id, message);
        }
        for conversation in &mut list {
            conversation.last_message = last.remove(&conversation.id);
        }
        Ok(list)
    }

    async fn one_conversation(
        &self,
        clause: &str,
        binds: (ConversationId, UserId),
    ) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(&format!("{CONVERSATION_SELECT} WHERE {clause}"))
            .bind(binds.0)
            .bind(binds.1)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let conversation = conversation_from_row(&row)?;
        Ok(self.with_last_messages(vec![conversation]).await?.pop())
    }
}

#[async_trait]
impl ChatStore for SqlStore {
    async fn create_conversation(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        title: &str,
        persona_id: Option<PersonaId>,
        origin: &str,
        now: Timestamp,
    ) -> Result<Conversation, StoreError> {
        let id: ConversationId = sqlx::query(
            "INSERT INTO conversations (user_id, isbn, title, persona_id, origin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(isbn)
        .bind(title)
        .bind(persona_id)
        .bind(origin)
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?
        .try_get("id")?;
        self.conversation(id, user_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<Option<Conversation>, StoreError> {
        self.one_conversation("c.id = $1 AND c.user_id = $2", (id, user_id))
            .await
    }

    async fn reply_target(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<Option<ReplyTarget>, StoreError> {
        let row = sqlx::query(
            "SELECT isbn, persona_id FROM conversations WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ReplyTarget {
                id,
                user_id,
                isbn: row.try_get("isbn")?,
                persona_id: row.try_get("persona_id")?,
            })
        })
        .transpose()
    }

    async fn history_tail(
        &self,
        conversation_id: ConversationId,
        max_chars: i64,
    ) -> Result<Vec<Message>, StoreError> {
        // Newest first, each row with the characters of the newer rows before it; only
        // the rows that start within the limit are read out.
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM ( \
                 SELECT {MESSAGE_COLUMNS}, \
                        SUM(LENGTH(content)) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) \
                          - LENGTH(content) AS newer_chars \
                 FROM messages \
                 WHERE conversation_id = $1 AND status IN ('complete', 'partial') \
                   AND TRIM(content) <> '' \
             ) AS tail WHERE newer_chars < $2 ORDER BY id"
        ))
        .bind(conversation_id)
        .bind(max_chars)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn conversations(
        &self,
        user_id: UserId,
        isbn: Option<&Isbn>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Conversation>), StoreError> {
        let filter = "WHERE c.user_id = $1 AND ($2 IS NULL OR c.isbn = $2)";
        let count: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM conversations c {filter}"
        ))
        .bind(user_id)
        .bind(isbn)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(&format!(
            "{CONVERSATION_SELECT} {filter} ORDER BY c.updated_at DESC, c.id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(user_id)
        .bind(isbn)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let list = rows
            .iter()
            .map(conversation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((count, self.with_last_messages(list).await?))
    }

    async fn stateless_conversation(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        title: &str,
        now: Timestamp,
    ) -> Result<(Conversation, bool), StoreError> {
        // The partial unique index `conversations_stateless` lets one insert win a race.
        let created = sqlx::query(
            "INSERT INTO conversations (user_id, isbn, title, origin, created_at, updated_at) \
             VALUES ($1, $2, $3, 'chat_stream', $4, $4) \
             ON CONFLICT (user_id, isbn) WHERE origin = 'chat_stream' DO NOTHING",
        )
        .bind(user_id)
        .bind(isbn)
        .bind(title)
        .bind(now.millis())
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        let row = sqlx::query(
            "SELECT id FROM conversations WHERE user_id = $1 AND isbn = $2 AND origin = 'chat_stream'",
        )
        .bind(user_id)
        .bind(isbn)
        .fetch_one(&self.pool)
        .await?;
        let conversation = self
            .conversation(row.try_get("id")?, user_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((conversation, created))
    }

    async fn delete_conversation_if_empty(&self, id: ConversationId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM conversations WHERE id = $1 \
               AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1) \
               AND NOT EXISTS (SELECT 1 FROM reply_claims WHERE conversation_id = $1)",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
        title: Option<&str>,
        persona_id: Option<Option<PersonaId>>,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError> {
        let (set_persona, persona) = match persona_id {
            Some(value) => (1_i64, value),
            None => (0, None),
        };
        let done = sqlx::query(
            "UPDATE conversations SET title = COALESCE($3, title), \
               persona_id = CASE WHEN $4 = 1 THEN $5 ELSE persona_id END, updated_at = $6 \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .bind(title)
        .bind(set_persona)
        .bind(persona)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.conversation(id, user_id).await
    }

    async fn delete_conversation(
        &self,
        id: ConversationId,
        user_id: UserId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_message(
        &self,
        conversation_id: ConversationId,
        message: NewMessage,
        now: Timestamp,
    ) -> Result<Message, StoreError> {
        let mut tx = self.write().await?;
        // The conversation row first (the same lock order as every other writer).
        let touched = sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
            .bind(conversation_id)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let usage = message.usage;
        let row = sqlx::query(&format!(
            "INSERT INTO messages (conversation_id, role, content, reasoning, status, prompt_tokens, \
               completion_tokens, total_tokens, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(conversation_id)
        .bind(message.role.as_str())
        .bind(message.content)
        .bind(message.reasoning)
        .bind(message.status.as_str())
        .bind(usage.map(|u| u.prompt_tokens))
        .bind(usage.map(|u| u.completion_tokens))
        .bind(usage.map(|u| u.total_tokens))
        .bind(now.millis())
        .fetch_one(&mut *tx)
        .await?;
        let stored = message_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn messages(&self, conversation_id: ConversationId) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY id"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn message(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND id = $2"
        ))
        .bind(conversation_id)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn delete_message(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND id = $2")
            .bind(conversation_id)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn recent_books(
        &self,
        user_id: UserId,
        limit: i64,
    ) -> Result<Vec<RecentBook>, StoreError> {
        let rows = sqlx::query(
            "SELECT activity.isbn, MAX(activity.at) AS at, MAX(books.title) AS title FROM ( \
                 SELECT isbn, updated_at AS at FROM conversations WHERE user_id = $1 \
                 UNION ALL \
                 SELECT isbn, created_at AS at FROM collections WHERE user_id = $1 \
                 UNION ALL \
                 SELECT isbn, updated_at AS at FROM reading_progress WHERE user_id = $1 \
                 UNION ALL \
                 SELECT isbn, created_at AS at FROM book_texts \
                     WHERE owner_id IS NULL OR owner_id = $1 \
             ) AS activity LEFT JOIN books ON books.isbn = activity.isbn \
             GROUP BY activity.isbn ORDER BY at DESC, activity.isbn LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RecentBook {
                    isbn: row.try_get("isbn")?,
                    at: Timestamp::from_millis(row.try_get("at")?),
                    title: row.try_get("title")?,
                })
            })
            .collect()
    }
}
