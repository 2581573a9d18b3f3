//! Personal API keys on SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::{select_users, user_from_row};
use super::SqlStore;
use crate::domain::UserId;
use crate::store::{ApiKeyRecord, ApiKeyStore, StoreError, TooManyApiKeys, UserRecord};
use crate::timestamp::Timestamp;

const KEY_COLUMNS: &str = "api_keys.id AS key_id, api_keys.user_id AS key_user_id, \
    api_keys.name AS key_name, api_keys.created_at AS key_created_at, \
    api_keys.last_used_at AS key_last_used_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRecord, sqlx::Error> {
    Ok(ApiKeyRecord {
        id: row.try_get("key_id")?,
        user_id: row.try_get("key_user_id")?,
        name: row.try_get("key_name")?,
        created_at: Timestamp::from_millis(row.try_get("key_created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("key_last_used_at")?
            .map(Timestamp::from_millis),
    })
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn create_api_key(
        &self,
        user_id: UserId,
        name: &str,
        key_hash: &str,
        max_per_user: usize,
        now: Timestamp,
    ) -> Result<Result<ApiKeyRecord, TooManyApiKeys>, StoreError> {
        let mut tx = self.write().await?;
        // The user's row lock (PostgreSQL; SQLite's write transaction already serialises)
        // makes two creations racing for the last place queue, so the count holds.
        let locked = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let held: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= max_per_user {
            return Ok(Err(TooManyApiKeys));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (user_id, name, key_hash, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {KEY_COLUMNS}"
        ))
        .bind(user_id)
        .bind(name)
        .bind(key_hash)
        .bind(now.millis())
        .fetch_one(&mut *tx)
        .await?;
        let key = key_from_row(&row)?;
        tx.commit().await?;
        Ok(Ok(key))
    }

    async fn api_keys(&self, user_id: UserId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    async fn delete_api_key(&self, id: i64, user_id: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn api_key_user(
        &self,
        key_hash: &str,
        now: Timestamp,
        touch_before: Timestamp,
    ) -> Result<Option<(ApiKeyRecord, UserRecord)>, StoreError> {
        let row = sqlx::query(&select_users(&format!(
            ", {KEY_COLUMNS} FROM api_keys JOIN users ON users.id = api_keys.user_id \
             WHERE api_keys.key_hash = $1"
        )))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut key = key_from_row(&row)?;
        let user = user_from_row(&row)?;
        if key
            .last_used_at
            .is_none_or(|used| used.millis() < touch_before.millis())
        {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now.millis())
                .bind(key.id)
                .execute(&self.pool)
                .await?;
            key.last_used_at = Some(now);
        }
        Ok(Some((key, user)))
    }
}
