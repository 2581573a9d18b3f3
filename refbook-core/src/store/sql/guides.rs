//! Books' guides on SQL: the guide's state and lease live on its text's row, its
//! summaries in `book_guide_entries` (deleted with the text).

use async_trait::async_trait;
use sqlx::Row;

use super::book_texts::{info_from_row, INFO_COLUMNS};
use super::SqlStore;
use crate::domain::{BookTextInfo, GuideEntry, GuideRecord, GuideState};
use crate::store::{GuideStore, StoreError};
use crate::timestamp::Timestamp;

/// The `section` of the whole book's summary.
const WHOLE_BOOK: i64 = -1;

#[async_trait]
impl GuideStore for SqlStore {
    async fn guides_to_build(&self, now: Timestamp) -> Result<Vec<BookTextInfo>, StoreError> {
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM book_texts t WHERE t.state = 'ready' AND \
             (t.guide_state IS NULL OR t.guide_state = 'building') AND \
             COALESCE(t.guide_lease_until, 0) < $1 ORDER BY t.id"
        );
        sqlx::query(&sql)
            .bind(now.millis())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(info_from_row)
            .collect()
    }

    async fn lease_guide(
        &self,
        text_id: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(
            "UPDATE book_texts SET guide_lease_until = $2, guide_state = 'building' \
             WHERE id = $1 AND state = 'ready' AND COALESCE(guide_lease_until, 0) < $3 \
             AND (guide_state IS NULL OR guide_state = 'building')",
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

    async fn put_guide_entry(
        &self,
        text_id: i64,
        entry: &GuideEntry,
        tokens: u64,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let section = entry.section.map_or(WHOLE_BOOK, i64::from);
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO book_guide_entries (text_id, section, summary) VALUES ($1, $2, $3) \
             ON CONFLICT (text_id, section) DO UPDATE SET summary = excluded.summary",
        )
        .bind(text_id)
        .bind(section)
        .bind(&entry.summary)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE book_texts SET guide_tokens = guide_tokens + $2, guide_lease_until = $3 \
             WHERE id = $1",
        )
        .bind(text_id)
        .bind(i64::try_from(tokens).unwrap_or(i64::MAX))
        .bind(until.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_guide(
        &self,
        text_id: i64,
        state: GuideState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE book_texts SET guide_state = $2, guide_error = $3, guide_lease_until = 0 \
             WHERE id = $1",
        )
        .bind(text_id)
        .bind(state.as_str())
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn guide(&self, text_id: i64) -> Result<GuideRecord, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT guide_state, guide_error, guide_tokens FROM book_texts WHERE id = $1",
        )
        .bind(text_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(GuideRecord::default());
        };
        let state: Option<String> = row.try_get("guide_state")?;
        let tokens: i64 = row.try_get("guide_tokens")?;
        let entries = sqlx::query(
            "SELECT section, summary FROM book_guide_entries WHERE text_id = $1 ORDER BY section",
        )
        .bind(text_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let section: i64 = row.try_get("section")?;
            Ok(GuideEntry {
                section: u32::try_from(section).ok(),
                summary: row.try_get("summary")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(GuideRecord {
            state: state.as_deref().and_then(GuideState::parse),
            error: row.try_get("guide_error")?,
            tokens: u64::try_from(tokens).unwrap_or(0),
            entries,
        })
    }
}
