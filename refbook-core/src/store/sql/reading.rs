//! Readers' progress in books on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::domain::{Isbn, ReadingMark, StoredProgress, UserId};
use crate::store::{ReadingStore, StoreError};
use crate::timestamp::Timestamp;

#[async_trait]
impl ReadingStore for SqlStore {
    async fn set_progress(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        mark: ReadingMark,
        now: Timestamp,
    ) -> Result<StoredProgress, StoreError> {
        let (section, position) = match mark {
            ReadingMark::Section(index) => (Some(i64::from(index)), None),
            ReadingMark::Position(at) => (None, Some(i64::try_from(at).unwrap_or(i64::MAX))),
        };
        sqlx::query(
            "INSERT INTO reading_progress (user_id, isbn, section, position, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, isbn) DO UPDATE SET section = excluded.section, \
             position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(isbn)
        .bind(section)
        .bind(position)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(StoredProgress {
            mark,
            updated_at: now,
        })
    }

    async fn progress(
        &self,
        user_id: UserId,
        isbn: &Isbn,
    ) -> Result<Option<StoredProgress>, StoreError> {
        let row = sqlx::query(
            "SELECT section, position, updated_at FROM reading_progress \
             WHERE user_id = $1 AND isbn = $2",
        )
        .bind(user_id)
        .bind(isbn)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let section: Option<i64> = row.try_get("section")?;
        let position: Option<i64> = row.try_get("position")?;
        let mark = match (section, position) {
            (Some(index), _) => ReadingMark::Section(u32::try_from(index).unwrap_or(u32::MAX)),
            (None, Some(at)) => ReadingMark::Position(usize::try_from(at).unwrap_or(0)),
            (None, None) => return Ok(None),
        };
        Ok(Some(StoredProgress {
            mark,
            updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
        }))
    }

    async fn clear_progress(&self, user_id: UserId, isbn: &Isbn) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM reading_progress WHERE user_id = $1 AND isbn = $2")
            .bind(user_id)
            .bind(isbn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
