//! Settings and usage counters on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::domain::UserId;
use crate::store::{SettingsStore, StoreError, UsageStore};

#[async_trait]
impl SettingsStore for SqlStore {
    async fn setting_or_init(&self, key: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        let value = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?
            .try_get("value")?;
        Ok(value)
    }
}

/// Adds tokens to users' days, `rows` of them: each row binds user, day (`YYYY-MM-DD`),
/// prompt and completion tokens, in that order (at most one row per user and day).
pub(super) fn add_usage_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|i| format!("({})", super::placeholders(i * 4, 4)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO usage_daily (user_id, day, prompt_tokens, completion_tokens) \
         VALUES {values} \
         ON CONFLICT (user_id, day) DO UPDATE SET \
           prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
           completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens"
    )
}

#[async_trait]
impl UsageStore for SqlStore {
    async fn add_usage(
        &self,
        user_id: UserId,
        day: &str,
        prompt_tokens: i64,
        completion_tokens: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&add_usage_sql(1))
            .bind(user_id)
            .bind(day)
            .bind(prompt_tokens)
            .bind(completion_tokens)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn usage_on(&self, user_id: UserId, day: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) AS used \
             FROM usage_daily WHERE user_id = $1 AND day = $2",
        )
        .bind(user_id)
        .bind(day)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("used")?)
    }
}
