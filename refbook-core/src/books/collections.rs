//! A reader's collection: the books they saved, newest first.

use super::Books;
use crate::domain::UserId;
use crate::domain::{CollectionItem, Isbn};
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

impl Books {
    /// Collects a book (looked up first; unknown `404`); adding twice is fine.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) for an unknown book; `Internal` when the database fails.
    pub async fn collect(&self, user_id: UserId, isbn: &Isbn) -> Result<CollectionItem> {
        let book = self.get(isbn).await?;
        let created_at = self.store.collect(user_id, isbn, Timestamp::now()).await?;
        Ok(CollectionItem {
            isbn: book.isbn.clone(),
            book,
            created_at,
        })
    }

    /// The user's collection, newest first.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn collection(
        &self,
        user_id: UserId,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<CollectionItem>)> {
        let (count, items) = self.store.collection(user_id, limit, offset).await?;
        let items = items
            .into_iter()
            .map(|(book, created_at)| CollectionItem {
                isbn: book.isbn.clone(),
                book: self.present(book),
                created_at,
            })
            .collect();
        Ok((count, items))
    }

    /// Removes a book from the collection (`404` if it was not there).
    ///
    /// # Errors
    ///
    /// `NotFound` when the book was not collected; `Internal` when the database fails.
    pub async fn uncollect(&self, user_id: UserId, isbn: &Isbn) -> Result<()> {
        if !self.store.uncollect(user_id, isbn).await? {
            return Err(Error::not_found("收藏", "Collection item"));
        }
        Ok(())
    }
}
