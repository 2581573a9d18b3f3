//! The seams of reading alongside: readers' progress in books, and books' guides.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{
    BookTextInfo, GuideEntry, GuideRecord, GuideState, Isbn, ReadingMark, StoredProgress, UserId,
};
use crate::timestamp::Timestamp;

/// How far each reader has read each book.
#[async_trait]
pub trait ReadingStore: Send + Sync {
    /// Sets the reader's mark in the book (replacing any earlier one).
    async fn set_progress(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        mark: ReadingMark,
        now: Timestamp,
    ) -> Result<StoredProgress, StoreError>;
    /// The reader's mark in the book, if they set one.
    async fn progress(
        &self,
        user_id: UserId,
        isbn: &Isbn,
    ) -> Result<Option<StoredProgress>, StoreError>;
    /// Clears the reader's mark; `false` when there was none.
    async fn clear_progress(&self, user_id: UserId, isbn: &Isbn) -> Result<bool, StoreError>;
}

/// Books' guides: one per text, written a summary at a time under a lease.
#[async_trait]
pub trait GuideStore: Send + Sync {
    /// Serving texts whose guide is not finished (never started, or building) and whose
    /// guide lease has run out by `now`, oldest first.
    async fn guides_to_build(&self, now: Timestamp) -> Result<Vec<BookTextInfo>, StoreError>;
    /// Takes the lease on a text's guide until `until` and marks it building; `false` when
    /// a lease still runs at `now` or the text is gone.
    async fn lease_guide(
        &self,
        text_id: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stores one summary (`None`: the whole book's), adds `tokens` to the cost spent and
    /// extends the lease to `until`.
    async fn put_guide_entry(
        &self,
        text_id: i64,
        entry: &GuideEntry,
        tokens: u64,
        until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Ends the building: `Ready`, or `Failed` with the reason.
    async fn finish_guide(
        &self,
        text_id: i64,
        state: GuideState,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A text's guide: state, cost and summaries.
    async fn guide(&self, text_id: i64) -> Result<GuideRecord, StoreError>;
}
