//! Books' own texts on SQL: a text, its sections and chunks written in one transaction
//! beside the text that serves; the background work on them (leases, vectors, the switch
//! to serving) is in `book_text_work.rs`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{placeholders, SqlStore};
use crate::domain::{
    BookTextInfo, Isbn, TextChunk, TextFormat, TextScope, TextSection, TextState, UserId,
};
use crate::store::{BookTextStore, NewBookText, StoreError};
use crate::timestamp::Timestamp;

/// Rows written by one `INSERT` (well under both databases' parameter limits).
const ROWS_PER_INSERT: usize = 100;

pub(super) const INFO_COLUMNS: &str = "t.id, t.isbn, t.owner_id, t.sha256, t.format, \
    t.chars, t.created_at, t.state, t.error, t.embed_model, t.chunk_count, t.vector_count";

pub(super) fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn as_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

pub(super) fn info_from_row(row: &AnyRow) -> Result<BookTextInfo, StoreError> {
    let isbn: String = row.try_get("isbn")?;
    let format: String = row.try_get("format")?;
    let owner: Option<UserId> = row.try_get("owner_id")?;
    let state: String = row.try_get("state")?;
    Ok(BookTextInfo {
        id: row.try_get("id")?,
        isbn: Isbn::parse(&isbn).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        scope: owner.map_or(TextScope::Library, TextScope::Reader),
        sha256: row.try_get("sha256")?,
        format: TextFormat::parse(&format)
            .ok_or_else(|| StoreError::Corrupt(format!("text format {format}")))?,
        chars: as_usize(row.try_get("chars")?),
        chunks: as_usize(row.try_get("chunk_count")?),
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        state: TextState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("text state {state}")))?,
        error: row.try_get("error")?,
        embed_model: row.try_get("embed_model")?,
        vectors: as_usize(row.try_get("vector_count")?),
    })
}

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// `query` with the scope's owner bound, when the scope has one.
pub(super) fn bind_owner(query: AnyQuery<'_>, owner: Option<UserId>) -> AnyQuery<'_> {
    match owner {
        Some(user) => query.bind(user),
        None => query,
    }
}

/// `owner_id IS NULL` or `owner_id = $n`, and the value to bind (if any).
pub(super) fn scope_condition(scope: TextScope, n: usize) -> (String, Option<UserId>) {
    match scope {
        TextScope::Library => ("t.owner_id IS NULL".to_owned(), None),
        TextScope::Reader(user) => (format!("t.owner_id = ${n}"), Some(user)),
    }
}

impl SqlStore {
    /// The text of a book in one scope that `rest` (a further condition, or an order and
    /// limit) picks.
    async fn one_text(
        &self,
        isbn: &Isbn,
        scope: TextScope,
        rest: &str,
    ) -> Result<Option<BookTextInfo>, StoreError> {
        let (condition, bound) = scope_condition(scope, 2);
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM book_texts t WHERE t.isbn = $1 AND {condition} {rest}"
        );
        bind_owner(sqlx::query(&sql).bind(isbn.as_str().to_owned()), bound)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(info_from_row)
            .transpose()
    }
}

#[async_trait]
impl BookTextStore for SqlStore {
    async fn put_book_text(
        &self,
        text: NewBookText<'_>,
        now: Timestamp,
    ) -> Result<BookTextInfo, StoreError> {
        let owner = match text.scope {
            TextScope::Library => None,
            TextScope::Reader(user) => Some(user),
        };
        let mut tx = self.write().await?;
        let (condition, bound) = scope_condition(text.scope, 2);
        let old = format!(
            "DELETE FROM book_texts WHERE id IN (SELECT t.id FROM book_texts t \
             WHERE t.isbn = $1 AND t.state <> 'ready' AND {condition})"
        );
        bind_owner(sqlx::query(&old).bind(text.isbn.as_str().to_owned()), bound)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO book_texts (isbn, owner_id, sha256, format, chars, body, created_at, \
             state, chunk_count) VALUES ($1, $2, $3, $4, $5, $6, $7, 'indexing', $8) \
             RETURNING id",
        )
        .bind(text.isbn.as_str().to_owned())
        .bind(owner)
        .bind(text.sha256.to_owned())
        .bind(text.format.as_str())
        .bind(as_i64(text.chars))
        .bind(text.text.to_owned())
        .bind(now.millis())
        .bind(as_i64(text.chunks.len()))
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            // The reader is gone (their copy's owner must exist).
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                return Err(StoreError::NotFound)
            }
            Err(e) => return Err(e.into()),
        };
        for rows in text.sections.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..rows.len())
                .map(|i| format!("({})", placeholders(i * 5, 5)))
                .collect();
            let sql = format!(
                "INSERT INTO book_text_sections (text_id, idx, title, start_char, end_char) \
                 VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for section in rows {
                query = query
                    .bind(id)
                    .bind(i64::from(section.index))
                    .bind(section.title.clone())
                    .bind(as_i64(section.start))
                    .bind(as_i64(section.end));
            }
            query.execute(&mut *tx).await?;
        }
        for (batch, rows) in text.chunks.chunks(ROWS_PER_INSERT).enumerate() {
            let values: Vec<String> = (0..rows.len())
                .map(|i| format!("({})", placeholders(i * 6, 6)))
                .collect();
            let sql = format!(
                "INSERT INTO book_text_chunks (text_id, idx, section, start_char, end_char, body) \
                 VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (i, chunk) in rows.iter().enumerate() {
                query = query
                    .bind(id)
                    .bind(as_i64(batch * ROWS_PER_INSERT + i))
                    .bind(i64::from(chunk.section))
                    .bind(as_i64(chunk.start))
                    .bind(as_i64(chunk.end))
                    .bind(chunk.text.clone());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(BookTextInfo {
            id,
            isbn: text.isbn.clone(),
            scope: text.scope,
            sha256: text.sha256.to_owned(),
            format: text.format,
            chars: text.chars,
            chunks: text.chunks.len(),
            created_at: now,
            state: TextState::Indexing,
            error: None,
            embed_model: None,
            vectors: 0,
        })
    }

    async fn book_text(
        &self,
        isbn: &Isbn,
        scope: TextScope,
    ) -> Result<Option<BookTextInfo>, StoreError> {
        self.one_text(isbn, scope, "AND t.state = 'ready'").await
    }

    async fn latest_book_text(
        &self,
        isbn: &Isbn,
        scope: TextScope,
    ) -> Result<Option<BookTextInfo>, StoreError> {
        self.one_text(isbn, scope, "ORDER BY t.id DESC LIMIT 1")
            .await
    }

    async fn reader_book_text(
        &self,
        isbn: &Isbn,
        reader: UserId,
    ) -> Result<Option<BookTextInfo>, StoreError> {
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM book_texts t \
             WHERE t.isbn = $1 AND t.state = 'ready' AND (t.owner_id IS NULL OR t.owner_id = $2) \
             ORDER BY CASE WHEN t.owner_id IS NULL THEN 1 ELSE 0 END LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(isbn.as_str().to_owned())
            .bind(reader)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(info_from_row)
            .transpose()
    }

    async fn book_texts(&self, scope: TextScope) -> Result<Vec<BookTextInfo>, StoreError> {
        let (condition, bound) = scope_condition(scope, 1);
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM book_texts t WHERE {condition} ORDER BY t.isbn, t.id"
        );
        bind_owner(sqlx::query(&sql), bound)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(info_from_row)
            .collect()
    }

    async fn book_text_parts(
        &self,
        text_id: i64,
    ) -> Result<(Vec<TextSection>, Vec<TextChunk>), StoreError> {
        let sections = sqlx::query(
            "SELECT idx, title, start_char, end_char FROM book_text_sections \
             WHERE text_id = $1 ORDER BY idx",
        )
        .bind(text_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(TextSection {
                index: u32::try_from(row.try_get::<i64, _>("idx")?).unwrap_or(u32::MAX),
                title: row.try_get("title")?,
                start: as_usize(row.try_get("start_char")?),
                end: as_usize(row.try_get("end_char")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let chunks = sqlx::query(
            "SELECT section, start_char, end_char, body FROM book_text_chunks \
             WHERE text_id = $1 ORDER BY idx",
        )
        .bind(text_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(TextChunk {
                section: u32::try_from(row.try_get::<i64, _>("section")?).unwrap_or(u32::MAX),
                start: as_usize(row.try_get("start_char")?),
                end: as_usize(row.try_get("end_char")?),
                text: row.try_get("body")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((sections, chunks))
    }

    async fn delete_book_text(&self, isbn: &Isbn, scope: TextScope) -> Result<bool, StoreError> {
        let (condition, bound) = scope_condition(scope, 2);
        let sql = format!(
            "DELETE FROM book_texts WHERE id IN \
             (SELECT t.id FROM book_texts t WHERE t.isbn = $1 AND {condition})"
        );
        let query = bind_owner(sqlx::query(&sql).bind(isbn.as_str().to_owned()), bound);
        let mut tx = self.write().await?;
        let deleted = query.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn finish_book_text(&self, text_id: i64) -> Result<bool, StoreError> {
        self.finish_text(text_id).await
    }

    async fn fail_book_text(&self, text_id: i64, error: &str) -> Result<(), StoreError> {
        self.fail_text(text_id, error).await
    }

    async fn texts_to_index(
        &self,
        model: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<BookTextInfo>, StoreError> {
        self.texts_with_work(model, now).await
    }

    async fn lease_book_text(
        &self,
        text_id: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.lease_text(text_id, until, now).await
    }

    async fn renew_book_text_lease(
        &self,
        text_id: i64,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.renew_text_lease(text_id, until).await
    }

    async fn start_text_vectors(&self, text_id: i64, model: &str) -> Result<usize, StoreError> {
        self.start_vectors(text_id, model).await
    }

    async fn put_text_vectors(
        &self,
        text_id: i64,
        first: usize,
        vectors: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        self.insert_vectors(text_id, first, vectors).await
    }

    async fn text_vectors(&self, text_id: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.vectors_of(text_id).await
    }
}
