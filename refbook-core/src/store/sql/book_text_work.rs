//! The background work on books' texts, on SQL: leases that let one worker (of any
//! instance) work on a text at a time, the chunk vectors, and the switch that makes an
//! `indexing` text the serving one in one transaction.

use sqlx::Row;

use super::book_texts::{as_i64, info_from_row, INFO_COLUMNS};
use super::{placeholders, SqlStore};
use crate::domain::BookTextInfo;
use crate::store::StoreError;
use crate::timestamp::Timestamp;

/// Vectors written by one `INSERT`.
const VECTORS_PER_INSERT: usize = 64;

impl SqlStore {
    pub(super) async fn finish_text(&self, text_id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT isbn, owner_id FROM book_texts WHERE id = $1 AND state = 'indexing'",
        )
        .bind(text_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let isbn: String = row.try_get("isbn")?;
        let owner: Option<i64> = row.try_get("owner_id")?;
        let old = match owner {
            Some(owner) => sqlx::query(
                "DELETE FROM book_texts WHERE isbn = $1 AND owner_id = $2 AND state = 'ready'",
            )
            .bind(isbn)
            .bind(owner),
            None => sqlx::query(
                "DELETE FROM book_texts WHERE isbn = $1 AND owner_id IS NULL AND state = 'ready'",
            )
            .bind(isbn),
        };
        old.execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE book_texts SET state = 'ready', error = NULL, lease_until = 0 WHERE id = $1",
        )
        .bind(text_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn fail_text(&self, text_id: i64, error: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE book_texts SET state = 'failed', error = $2, lease_until = 0 \
             WHERE id = $1 AND state = 'indexing'",
        )
        .bind(text_id)
        .bind(error.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn texts_with_work(
        &self,
        model: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<BookTextInfo>, StoreError> {
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM book_texts t WHERE t.lease_until < $1 AND \
             (t.state = 'indexing' OR (t.state = 'ready' AND $2 <> '' AND \
              (t.embed_model IS NULL OR t.embed_model <> $2 OR \
               t.vector_count < t.chunk_count))) \
             ORDER BY t.id"
        );
        sqlx::query(&sql)
            .bind(now.millis())
            .bind(model.unwrap_or_default().to_owned())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(info_from_row)
            .collect()
    }

    pub(super) async fn lease_text(
        &self,
        text_id: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(
            "UPDATE book_texts SET lease_until = $2 WHERE id = $1 AND lease_until < $3",
        )
        .bind(text_id)
        .bind(until.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(taken == 1)
    }

    pub(super) async fn renew_text_lease(
        &self,
        text_id: i64,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE book_texts SET lease_until = $2 WHERE id = $1")
            .bind(text_id)
            .bind(until.millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn start_vectors(
        &self,
        text_id: i64,
        model: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT embed_model, vector_count FROM book_texts WHERE id = $1")
            .bind(text_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let current: Option<String> = row.try_get("embed_model")?;
        if current.as_deref() == Some(model) {
            let count: i64 = row.try_get("vector_count")?;
            return Ok(usize::try_from(count).unwrap_or(0));
        }
        sqlx::query("DELETE FROM book_text_vectors WHERE text_id = $1")
            .bind(text_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE book_texts SET embed_model = $2, vector_count = 0 WHERE id = $1")
            .bind(text_id)
            .bind(model.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(0)
    }

    pub(super) async fn insert_vectors(
        &self,
        text_id: i64,
        first: usize,
        vectors: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for (batch, rows) in vectors.chunks(VECTORS_PER_INSERT).enumerate() {
            let values: Vec<String> = (0..rows.len())
                .map(|i| format!("({})", placeholders(i * 3, 3)))
                .collect();
            let sql = format!(
                "INSERT INTO book_text_vectors (text_id, idx, vector) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (i, vector) in rows.iter().enumerate() {
                query = query
                    .bind(text_id)
                    .bind(as_i64(first + batch * VECTORS_PER_INSERT + i))
                    .bind(vector.clone());
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE book_texts SET vector_count = vector_count + $2 WHERE id = $1")
            .bind(text_id)
            .bind(as_i64(vectors.len()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn vectors_of(&self, text_id: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query("SELECT vector FROM book_text_vectors WHERE text_id = $1 ORDER BY idx")
                .bind(text_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get("vector"))
                .collect::<Result<_, _>>()?,
        )
    }
}
