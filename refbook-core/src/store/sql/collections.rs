//! Collections on SQL.

use async_trait::async_trait;
use sqlx::Row;

use super::books::{stored_book_from_row, BOOK_COLUMNS};
use super::SqlStore;
use crate::domain::Book;
use crate::domain::{Isbn, UserId};
use crate::store::{CollectionStore, StoreError};
use crate::timestamp::Timestamp;

#[async_trait]
impl CollectionStore for SqlStore {
    async fn collect(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        sqlx::query(
            "INSERT INTO collections (user_id, isbn, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, isbn) DO NOTHING",
        )
        .bind(user_id)
        .bind(isbn)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        let created: i64 =
            sqlx::query("SELECT created_at FROM collections WHERE user_id = $1 AND isbn = $2")
                .bind(user_id)
                .bind(isbn)
                .fetch_one(&self.pool)
                .await?
                .try_get("created_at")?;
        Ok(Timestamp::from_millis(created))
    }

    async fn collection(
        &self,
        user_id: UserId,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<(Book, Timestamp)>), StoreError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM collections WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let columns = BOOK_COLUMNS
            .split(", ")
            .map(|c| format!("books.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns}, collections.created_at AS collected_at \
             FROM collections JOIN books ON books.isbn = collections.isbn \
             WHERE collections.user_id = $1 \
             ORDER BY collections.created_at DESC, collections.isbn LIMIT $2 OFFSET $3"
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                let book = stored_book_from_row(row)?.book;
                let at: i64 = row.try_get("collected_at")?;
                Ok((book, Timestamp::from_millis(at)))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((count, items))
    }

    async fn uncollect(&self, user_id: UserId, isbn: &Isbn) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM collections WHERE user_id = $1 AND isbn = $2")
            .bind(user_id)
            .bind(isbn)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
