//! Kept responses of the OpenAI face's Responses API on SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::domain::{Role, TokenUsage, UserId};
use crate::store::{ResponseStore, StoreError, StoredResponse};
use crate::timestamp::Timestamp;

/// The exchange as stored: `[[role, text], …]`.
fn exchange_json(exchange: &[(Role, String)]) -> String {
    let pairs: Vec<(&str, &str)> = exchange
        .iter()
        .map(|(role, text)| (role.as_str(), text.as_str()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored response's {what}"))
}

fn from_row(row: &AnyRow) -> Result<StoredResponse, StoreError> {
    let exchange: String = row.try_get("exchange")?;
    let pairs: Vec<(String, String)> =
        serde_json::from_str(&exchange).map_err(|_| corrupt("exchange"))?;
    let exchange = pairs
        .into_iter()
        .map(|(role, text)| Ok((Role::parse(&role).ok_or_else(|| corrupt("role"))?, text)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let sources: String = row.try_get("sources")?;
    Ok(StoredResponse {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        model: row.try_get("model")?,
        instructions: row.try_get("instructions")?,
        previous_id: row.try_get("previous_id")?,
        exchange,
        output: row.try_get("output")?,
        status: row.try_get("status")?,
        usage: TokenUsage::new(row.try_get("input_tokens")?, row.try_get("output_tokens")?),
        sources: serde_json::from_str(&sources).map_err(|_| corrupt("sources"))?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

#[async_trait]
impl ResponseStore for SqlStore {
    async fn insert_response(&self, response: &StoredResponse) -> Result<(), StoreError> {
        let sources = serde_json::to_string(&response.sources).map_err(|_| corrupt("sources"))?;
        sqlx::query(
            "INSERT INTO responses (id, user_id, model, instructions, previous_id, exchange, \
             output, sources, status, input_tokens, output_tokens, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&response.id)
        .bind(response.user_id)
        .bind(&response.model)
        .bind(&response.instructions)
        .bind(&response.previous_id)
        .bind(exchange_json(&response.exchange))
        .bind(&response.output)
        .bind(sources)
        .bind(&response.status)
        .bind(response.usage.prompt_tokens)
        .bind(response.usage.completion_tokens)
        .bind(response.created_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn response(
        &self,
        user_id: UserId,
        id: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row = sqlx::query("SELECT * FROM responses WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn delete_response(&self, user_id: UserId, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM responses WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
