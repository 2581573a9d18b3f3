//! Personas on SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::domain::Persona;
use crate::domain::{PersonaId, UserId};
use crate::store::{PersonaStore, StoreError};
use crate::timestamp::Timestamp;

const PERSONA_COLUMNS: &str = "id, user_id, key, name, description, created_at";

fn persona_from_row(row: &AnyRow) -> Result<Persona, sqlx::Error> {
    let owner: Option<i64> = row.try_get("user_id")?;
    Ok(Persona {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        builtin: owner.is_none(),
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
    })
}

#[async_trait]
impl PersonaStore for SqlStore {
    async fn personas(&self, user_id: UserId) -> Result<Vec<Persona>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE user_id IS NULL OR user_id = $1 \
             ORDER BY CASE WHEN user_id IS NULL THEN 0 ELSE 1 END, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(persona_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn persona(&self, id: PersonaId, user_id: UserId) -> Result<Option<Persona>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE id = $1 AND (user_id IS NULL OR user_id = $2)"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(persona_from_row).transpose()?)
    }

    async fn builtin_persona(&self, key: &str) -> Result<Option<Persona>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PERSONA_COLUMNS} FROM personas WHERE key = $1 AND user_id IS NULL"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(persona_from_row).transpose()?)
    }

    async fn create_persona(
        &self,
        user_id: UserId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> Result<Persona, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO personas (user_id, name, description, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {PERSONA_COLUMNS}"
        ))
        .bind(user_id)
        .bind(name)
        .bind(description)
        .bind(now.millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(persona_from_row(&row)?)
    }

    async fn delete_persona(&self, id: PersonaId, user_id: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM personas WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
