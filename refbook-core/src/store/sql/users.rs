//! Users on SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::domain::UserId;
use crate::store::{unique_key, NewUser, ProfileChange, StoreError, UserRecord, UserStore};
use crate::timestamp::Timestamp;

const USER_COLUMNS: &str = "users.id, users.username, users.email, users.nickname, \
    users.avatar_url, users.password_hash, users.wechat_openid, users.created_at, users.updated_at";

/// Reads a row selected with [`USER_COLUMNS`].
pub(super) fn user_from_row(row: &AnyRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        nickname: row.try_get("nickname")?,
        avatar_url: row.try_get("avatar_url")?,
        password_hash: row.try_get("password_hash")?,
        wechat_openid: row.try_get("wechat_openid")?,
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
    })
}

/// `SELECT` of the user columns, for queries that add their own `FROM`/`WHERE`.
pub(super) fn select_users(rest: &str) -> String {
    format!("SELECT {USER_COLUMNS} {rest}")
}

impl SqlStore {
    async fn user_where(
        &self,
        clause: &str,
        value: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&select_users(&format!("FROM users WHERE {clause} = $1")))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<UserRecord, StoreError> {
        let username_key = user.username.as_deref().map(unique_key);
        let email_key = user.email.as_deref().map(unique_key);
        let row = sqlx::query(&format!(
            "INSERT INTO users (username, username_key, email, email_key, nickname, \
             password_hash, wechat_openid, wechat_unionid, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {USER_COLUMNS}"
        ))
        .bind(user.username)
        .bind(username_key)
        .bind(user.email)
        .bind(email_key)
        .bind(user.nickname)
        .bind(user.password_hash)
        .bind(user.wechat_openid)
        .bind(user.wechat_unionid)
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(user_from_row(&row)?)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&select_users("FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    async fn user_by_username_key(&self, key: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("username_key", key).await
    }

    async fn user_by_email_key(&self, key: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("email_key", key).await
    }

    async fn user_by_openid(&self, openid: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("wechat_openid", openid).await
    }

    async fn update_profile(
        &self,
        id: UserId,
        change: ProfileChange,
        now: Timestamp,
    ) -> Result<UserRecord, StoreError> {
        // Each optional part is a flag plus a value, so one statement serves every mix.
        let (set_avatar, avatar) = split_change(change.avatar_url);
        let (set_email, email) = split_change(change.email);
        let email_key = email.as_deref().map(unique_key);
        let row = sqlx::query(&format!(
            "UPDATE users SET \
               nickname = COALESCE($2, nickname), \
               avatar_url = CASE WHEN $3 = 1 THEN $4 ELSE avatar_url END, \
               email = CASE WHEN $5 = 1 THEN $6 ELSE email END, \
               email_key = CASE WHEN $5 = 1 THEN $7 ELSE email_key END, \
               updated_at = $8 \
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(change.nickname)
        .bind(set_avatar)
        .bind(avatar)
        .bind(set_email)
        .bind(email)
        .bind(email_key)
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(user_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(hash)
                .bind(now.millis())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// `(1, value)` to set a field (possibly to NULL), `(0, None)` to leave it.
fn split_change(change: Option<Option<String>>) -> (i64, Option<String>) {
    match change {
        Some(value) => (1, value),
        None => (0, None),
    }
}
