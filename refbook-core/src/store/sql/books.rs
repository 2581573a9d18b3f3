//! Books, covers and the catalogue on SQL. List columns are JSON arrays in text columns.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::SqlStore;
use crate::domain::{Book, BookFields, Cover, Isbn, StoredBook};
use crate::store::{BookStore, StoreError};
use crate::timestamp::Timestamp;

pub(super) const BOOK_COLUMNS: &str =
    "isbn, isbn10, title, subtitle, authors, translators, publisher, \
    published, pages, introduction, author_intro, cover_url, tags, source, fetched_at, updated_at";

pub(super) fn list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("books.{column}: {e}")))
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn stored_book_from_row(row: &AnyRow) -> Result<StoredBook, StoreError> {
    Ok(StoredBook {
        book: Book {
            isbn: row.try_get("isbn")?,
            isbn10: row.try_get("isbn10")?,
            title: row.try_get("title")?,
            subtitle: row.try_get("subtitle")?,
            authors: list(row, "authors")?,
            translators: list(row, "translators")?,
            publisher: row.try_get("publisher")?,
            published: row.try_get("published")?,
            pages: row.try_get("pages")?,
            introduction: row.try_get("introduction")?,
            author_intro: row.try_get("author_intro")?,
            cover_url: row.try_get("cover_url")?,
            tags: list(row, "tags")?,
            source: row.try_get("source")?,
            updated_at: Timestamp::from_millis(row.try_get("updated_at")?),
        },
        fetched_at: Timestamp::from_millis(row.try_get("fetched_at")?),
    })
}

/// `%query%` for LIKE, with `\`, `%` and `_` escaped.
fn like_pattern(query: &str) -> String {
    let mut out = String::from("%");
    for c in query.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[async_trait]
impl BookStore for SqlStore {
    async fn book(&self, isbn: &Isbn) -> Result<Option<StoredBook>, StoreError> {
        let row = sqlx::query(&format!("SELECT {BOOK_COLUMNS} FROM books WHERE isbn = $1"))
            .bind(isbn)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_book_from_row).transpose()
    }

    async fn upsert_book(&self, book: &Book, fetched_at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO books (isbn, isbn10, title, subtitle, authors, translators, publisher, \
               published, pages, introduction, author_intro, cover_url, tags, source, fetched_at, \
               updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (isbn) DO UPDATE SET isbn10 = excluded.isbn10, title = excluded.title, \
               subtitle = excluded.subtitle, authors = excluded.authors, \
               translators = excluded.translators, publisher = excluded.publisher, \
               published = excluded.published, pages = excluded.pages, \
               introduction = excluded.introduction, author_intro = excluded.author_intro, \
               cover_url = excluded.cover_url, tags = excluded.tags, source = excluded.source, \
               fetched_at = excluded.fetched_at, updated_at = excluded.updated_at",
        )
        .bind(&book.isbn)
        .bind(&book.isbn10)
        .bind(&book.title)
        .bind(&book.subtitle)
        .bind(json_list(&book.authors))
        .bind(json_list(&book.translators))
        .bind(&book.publisher)
        .bind(&book.published)
        .bind(book.pages)
        .bind(&book.introduction)
        .bind(&book.author_intro)
        .bind(&book.cover_url)
        .bind(json_list(&book.tags))
        .bind(&book.source)
        .bind(fetched_at.millis())
        .bind(book.updated_at.millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM book_covers WHERE isbn = $1 AND ($2 IS NULL OR source_url <> $2)")
            .bind(&book.isbn)
            .bind(&book.cover_url)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn search_books(
        &self,
        query: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Book>), StoreError> {
        let pattern = like_pattern(query);
        let filter = "WHERE lower(title) LIKE $1 ESCAPE '\\' OR lower(authors) LIKE $1 ESCAPE '\\'";
        let count: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM books {filter}"))
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {BOOK_COLUMNS} FROM books {filter} ORDER BY updated_at DESC, isbn LIMIT $2 OFFSET $3"
        ))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let books = rows
            .iter()
            .map(|row| stored_book_from_row(row).map(|s| s.book))
            .collect::<Result<_, _>>()?;
        Ok((count, books))
    }

    async fn cover(&self, isbn: &Isbn) -> Result<Option<Cover>, StoreError> {
        let row =
            sqlx::query("SELECT source_url, content_type, bytes FROM book_covers WHERE isbn = $1")
                .bind(isbn)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| -> Result<Cover, StoreError> {
            Ok(Cover {
                source_url: r.try_get("source_url")?,
                content_type: r.try_get("content_type")?,
                bytes: r.try_get("bytes")?,
            })
        })
        .transpose()
    }

    async fn put_cover(
        &self,
        isbn: &Isbn,
        cover: &Cover,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO book_covers (isbn, source_url, content_type, bytes, fetched_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (isbn) DO UPDATE SET source_url = excluded.source_url, \
               content_type = excluded.content_type, bytes = excluded.bytes, \
               fetched_at = excluded.fetched_at",
        )
        .bind(isbn)
        .bind(&cover.source_url)
        .bind(&cover.content_type)
        .bind(&cover.bytes)
        .bind(now.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_catalog(&self, books: &[Book], now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        for book in books {
            let data = serde_json::to_string(&BookFields::from(book))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO catalog_books (isbn, data, imported_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (isbn) DO UPDATE SET data = excluded.data, \
                   imported_at = excluded.imported_at",
            )
            .bind(&book.isbn)
            .bind(data)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(books.len() as u64)
    }

    async fn catalog_book(&self, isbn: &Isbn) -> Result<Option<Book>, StoreError> {
        let row = sqlx::query("SELECT data, imported_at FROM catalog_books WHERE isbn = $1")
            .bind(isbn)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get("data")?;
        let fields: BookFields = serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("catalog_books.data: {e}")))?;
        let imported = Timestamp::from_millis(row.try_get("imported_at")?);
        Ok(Some(fields.into_book(isbn, "catalog", imported)))
    }
}
