//! Login sessions and refresh-token rotation on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::users::{select_users, user_from_row};
use super::SqlStore;
use crate::domain::UserId;
use crate::store::{RefreshOutcome, SessionStore, StoreError, UserRecord};
use crate::timestamp::Timestamp;

/// Records a refresh token (its hash) in a session.
async fn insert_refresh_token(
    tx: &mut super::tx::WriteTx,
    hash: &str,
    session_id: i64,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(session_id)
    .bind(now.millis())
    .bind(expires_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(
        &self,
        user_id: UserId,
        refresh_hash: &str,
        refresh_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let session_id: i64 = sqlx::query(
            "INSERT INTO login_sessions (user_id, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $2, $3) RETURNING id",
        )
        .bind(user_id)
        .bind(now.millis())
        .bind(refresh_expires_at.millis())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        insert_refresh_token(&mut tx, refresh_hash, session_id, refresh_expires_at, now).await?;
        tx.commit().await?;
        Ok(session_id)
    }

    async fn session_user(
        &self,
        session_id: i64,
        user_id: UserId,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&select_users(
            "FROM login_sessions JOIN users ON users.id = login_sessions.user_id \
             WHERE login_sessions.id = $1 AND login_sessions.user_id = $2",
        ))
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: Timestamp,
        now: Timestamp,
        reuse_grace_ms: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.write().await?;
        // First, a write to the token's session row. Every rotation in a session queues
        // here (a row lock on PostgreSQL, the write lock on SQLite), so sessions and then
        // tokens are always locked in that order: racing exchanges of one token cannot
        // deadlock, and exactly one of them claims it.
        let session = sqlx::query(
            "UPDATE login_sessions SET last_used_at = $2 \
             WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
             RETURNING id, user_id",
        )
        .bind(old_hash)
        .bind(now.millis())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(session) = session else {
            tx.commit().await?;
            return Ok(RefreshOutcome::Invalid);
        };
        let session_id: i64 = session.try_get("id")?;
        let user_id: UserId = session.try_get("user_id")?;
        let token =
            sqlx::query("SELECT used_at, expires_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(old_hash)
                .fetch_one(&mut *tx)
                .await?;
        let used_at: Option<i64> = token.try_get("used_at")?;
        let expires_at: i64 = token.try_get("expires_at")?;
        let within_grace = used_at.is_some_and(|at| now.millis() - at < reuse_grace_ms);
        let outcome = if used_at.is_some() && !within_grace {
            sqlx::query("DELETE FROM login_sessions WHERE id = $1")
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
            RefreshOutcome::Reused { user_id }
        } else if expires_at <= now.millis() {
            RefreshOutcome::Invalid
        } else {
            // Within the grace the first exchange time stays, so the grace never stretches.
            sqlx::query(
                "UPDATE refresh_tokens SET used_at = COALESCE(used_at, $2) WHERE token_hash = $1",
            )
            .bind(old_hash)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE login_sessions SET expires_at = $2 WHERE id = $1")
                .bind(session_id)
                .bind(new_expires_at.millis())
                .execute(&mut *tx)
                .await?;
            insert_refresh_token(&mut tx, new_hash, session_id, new_expires_at, now).await?;
            RefreshOutcome::Rotated {
                session_id,
                user_id,
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn session_of_refresh_token(
        &self,
        hash: &str,
    ) -> Result<Option<(i64, UserId)>, StoreError> {
        let row = sqlx::query(
            "SELECT login_sessions.id AS session_id, login_sessions.user_id AS user_id \
             FROM refresh_tokens JOIN login_sessions ON login_sessions.id = refresh_tokens.session_id \
             WHERE refresh_tokens.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<(i64, UserId), sqlx::Error> {
            Ok((r.try_get("session_id")?, r.try_get("user_id")?))
        })
        .transpose()
        .map_err(StoreError::from)
    }

    async fn delete_session(&self, session_id: i64, user_id: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM login_sessions WHERE id = $1 AND user_id = $2")
            .bind(session_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(
        &self,
        user_id: UserId,
        keep: Option<i64>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM login_sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)",
        )
        .bind(user_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_sessions WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
