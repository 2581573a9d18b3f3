//! Readers' progress in books: the mark each reader sets (the last section read, or a
//! position), checked against the text they see when set and resolved against it when
//! used — a hard limit on what their searches and answers may quote.

use serde::Serialize;

use super::texts::BookTexts;
use crate::domain::{BookTextInfo, Isbn, ReadingMark, ReadingPoint, StoredProgress, UserId};
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

/// A reader's progress in a book.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The mark as the reader set it.
    #[serde(skip)]
    pub mark: ReadingMark,
    /// When it was set.
    pub updated_at: Timestamp,
    /// Where it falls in the text the reader sees now (`None` when the book has no text
    /// any more; a mark past a replaced text's end reads the whole text).
    pub point: Option<ReadingPoint>,
}

fn no_text() -> Error {
    Error::not_found("这本书的文本", "Text of this book")
}

fn past_the_end(mark: ReadingMark, text: &BookTextInfo, sections: usize) -> Error {
    match mark {
        ReadingMark::Section(_) => Error::invalid(
            "section",
            format!(
                "这本书只有 {sections} 个部分（编号 0–{}）",
                sections.saturating_sub(1)
            ),
            format!(
                "The book has {sections} sections (indexes 0–{})",
                sections.saturating_sub(1)
            ),
        ),
        ReadingMark::Position(_) => Error::invalid(
            "position",
            format!("位置超出了全书的 {} 个字符", text.chars),
            format!("The position is past the book's {} characters", text.chars),
        ),
    }
}

impl BookTexts {
    /// Sets how far `reader` has read the book: checked against the text they see (their
    /// own copy, else the library's).
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when the book has no text for them; `INVALID_PARAMS` (`section` or
    /// `position`) for a mark past the text's end; `Internal` when the database fails.
    pub async fn set_progress(
        &self,
        isbn: &Isbn,
        reader: UserId,
        mark: ReadingMark,
    ) -> Result<Progress> {
        let text = self
            .seen_by(isbn, Some(reader))
            .await?
            .ok_or_else(no_text)?;
        let sections = self.sections(&text).await?;
        let point = ReadingPoint::resolve(mark, &sections, text.chars)
            .ok_or_else(|| past_the_end(mark, &text, sections.len()))?;
        let stored = self
            .store
            .set_progress(reader, isbn, mark, Timestamp::now())
            .await?;
        Ok(Progress {
            mark,
            updated_at: stored.updated_at,
            point: Some(point),
        })
    }

    /// The reader's progress in the book, if they set one.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn progress(&self, isbn: &Isbn, reader: UserId) -> Result<Option<Progress>> {
        let Some(stored) = self.store.progress(reader, isbn).await? else {
            return Ok(None);
        };
        let point = match self.seen_by(isbn, Some(reader)).await? {
            Some(text) => Some(self.resolve(&text, stored).await?),
            None => None,
        };
        Ok(Some(Progress {
            mark: stored.mark,
            updated_at: stored.updated_at,
            point,
        }))
    }

    /// Clears the reader's progress (their questions use the whole book again); `false`
    /// when none was set.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn clear_progress(&self, isbn: &Isbn, reader: UserId) -> Result<bool> {
        Ok(self.store.clear_progress(reader, isbn).await?)
    }

    /// How much of `text` the reader has read, when they set a mark short of its end.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn read_so_far(
        &self,
        text: &BookTextInfo,
        reader: UserId,
    ) -> Result<Option<ReadingPoint>> {
        let Some(stored) = self.store.progress(reader, &text.isbn).await? else {
            return Ok(None);
        };
        let point = self.resolve(text, stored).await?;
        Ok((!point.is_whole_book()).then_some(point))
    }

    /// Where a stored mark falls in `text`; a mark past its end (the text was replaced by
    /// a shorter one) reads all of it.
    async fn resolve(&self, text: &BookTextInfo, stored: StoredProgress) -> Result<ReadingPoint> {
        let sections = self.sections(text).await?;
        Ok(ReadingPoint::resolve(stored.mark, &sections, text.chars)
            .unwrap_or_else(|| ReadingPoint::whole(&sections, text.chars)))
    }
}
