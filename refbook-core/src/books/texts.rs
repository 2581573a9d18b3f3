//! [`BookTexts`]: books' own texts — added whole (the same file again is a no-op, another
//! replaces the old text at once), listed, removed, and searched through an in-memory
//! index per text, loaded on first search and kept within a memory bound.
//!
//! Who sees which text: the library's text serves every reader; a reader's own copy serves
//! that reader only, and wins over the library's for them.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::book_text::{prepare, Bm25Index};
use crate::config::BookSettings;
use crate::domain::{
    BookTextInfo, Isbn, SectionRef, TextChunk, TextFormat, TextScope, TextSection, UserId,
};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{NewBookText, Store};
use crate::timestamp::Timestamp;

/// The most passages one search returns.
pub const MAX_PASSAGES: usize = 20;

/// A passage of a book's text found by a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Where it is.
    pub section: SectionRef,
    /// Its start in the book's text, in characters.
    pub start: usize,
    /// Its end (exclusive), in characters.
    pub end: usize,
    /// The passage.
    pub text: String,
    /// How well it matches (higher is better; comparable within one search only).
    pub score: f32,
}

/// What adding a text did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedText {
    /// The text now stored.
    pub info: BookTextInfo,
    /// `false` when the same file was already the stored text (nothing changed).
    pub replaced: bool,
}

/// A stored text loaded for search.
struct LoadedText {
    sections: Vec<TextSection>,
    chunks: Vec<TextChunk>,
    index: Bm25Index,
}

impl LoadedText {
    fn memory_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.text.len() + 48).sum();
        let sections: usize = self.sections.iter().map(|s| s.title.len() + 48).sum();
        chunks + sections + self.index.memory_bytes()
    }
}

/// Books' own texts.
pub struct BookTexts {
    store: Arc<dyn Store>,
    max_bytes: usize,
    per_reader: usize,
    /// Loaded texts by id (a replaced text has a new id, so nothing stale is served).
    loaded: moka::sync::Cache<i64, Arc<LoadedText>>,
    /// One load at a time: questions arriving together for a text not loaded yet wait
    /// for one load instead of each building the same index.
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for BookTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BookTexts")
            .field("loaded", &self.loaded.entry_count())
            .finish_non_exhaustive()
    }
}

impl BookTexts {
    /// The service over `store`, with the limits of `config`.
    pub fn new(store: Arc<dyn Store>, config: &BookSettings) -> Self {
        let budget = config.index_cache_mb.saturating_mul(1024 * 1024).max(1);
        Self {
            store,
            max_bytes: config.text_max_bytes,
            per_reader: config.texts_per_user,
            loaded: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_, text: &Arc<LoadedText>| {
                    u32::try_from(text.memory_bytes()).unwrap_or(u32::MAX)
                })
                .build(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Stores `bytes` (a file of `format`) as the book's text in `scope`: decoded, cut into
    /// sections and chunks, and stored whole, replacing the scope's previous text at once.
    /// The same file again changes nothing.
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` for an undecodable or empty text or a file over
    /// `REFBOOK_BOOK_TEXT_MAX_BYTES`, `CONFLICT` for a reader's new copy beyond
    /// `REFBOOK_BOOK_TEXTS_PER_USER`, `NOT_FOUND` for a reader who no longer exists;
    /// `Internal` when the database fails.
    pub async fn add(
        &self,
        isbn: &Isbn,
        scope: TextScope,
        format: TextFormat,
        bytes: Vec<u8>,
    ) -> Result<AddedText> {
        if bytes.len() > self.max_bytes {
            return Err(too_large(self.max_bytes));
        }
        let sha256 = hex(&Sha256::digest(&bytes));
        let current = self.store.book_text(isbn, scope).await?;
        if let Some(info) = current.clone().filter(|info| info.sha256 == sha256) {
            return Ok(AddedText {
                info,
                replaced: false,
            });
        }
        if let (TextScope::Reader(_), None) = (scope, &current) {
            if self.store.book_texts(scope).await?.len() >= self.per_reader {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "最多只能保存 {} 本书的文本，请先删除不用的",
                        self.per_reader
                    ),
                    format!(
                        "At most {} texts of your own; delete one first",
                        self.per_reader
                    ),
                ));
            }
        }
        let prepared = tokio::task::spawn_blocking(move || prepare(&bytes, format))
            .await
            .map_err(|e| Error::internal(format!("preparing a text: {e}")))??;
        let info = self
            .store
            .put_book_text(
                NewBookText {
                    isbn,
                    scope,
                    sha256: &sha256,
                    format,
                    text: &prepared.text,
                    chars: prepared.chars,
                    sections: &prepared.sections,
                    chunks: &prepared.chunks,
                },
                Timestamp::now(),
            )
            .await?;
        tracing::info!(isbn = %isbn, chars = info.chars, chunks = info.chunks, "a book's text stored");
        Ok(AddedText {
            info,
            replaced: true,
        })
    }

    /// The largest file [`add`](Self::add) takes, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The book's text in `scope`, if any.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn info(&self, isbn: &Isbn, scope: TextScope) -> Result<Option<BookTextInfo>> {
        Ok(self.store.book_text(isbn, scope).await?)
    }

    /// The text a reader's questions about the book use (their own copy, else the
    /// library's); with no reader, the library's.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn seen_by(
        &self,
        isbn: &Isbn,
        reader: Option<UserId>,
    ) -> Result<Option<BookTextInfo>> {
        Ok(match reader {
            Some(reader) => self.store.reader_book_text(isbn, reader).await?,
            None => self.store.book_text(isbn, TextScope::Library).await?,
        })
    }

    /// Every text of `scope`, by ISBN.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn list(&self, scope: TextScope) -> Result<Vec<BookTextInfo>> {
        Ok(self.store.book_texts(scope).await?)
    }

    /// Removes the book's text in `scope`; `false` when there was none.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn remove(&self, isbn: &Isbn, scope: TextScope) -> Result<bool> {
        Ok(self.store.delete_book_text(isbn, scope).await?)
    }

    /// The sections of a stored text.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn sections(&self, text: &BookTextInfo) -> Result<Vec<TextSection>> {
        Ok(self.load(text.id).await?.sections.clone())
    }

    /// The passages of the text `reader` sees (see [`seen_by`](Self::seen_by)) that best
    /// match `query`, best first, at most `limit` (and at most [`MAX_PASSAGES`]); `None`
    /// when the book has no text.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn search(
        &self,
        isbn: &Isbn,
        reader: Option<UserId>,
        query: &str,
        limit: usize,
    ) -> Result<Option<Vec<Passage>>> {
        let Some(text) = self.seen_by(isbn, reader).await? else {
            return Ok(None);
        };
        let loaded = self.load(text.id).await?;
        let hits = loaded.index.search(query, limit.min(MAX_PASSAGES));
        Ok(Some(
            hits.into_iter()
                .filter_map(|hit| {
                    let chunk = loaded.chunks.get(hit.chunk)?;
                    let title = loaded
                        .sections
                        .get(chunk.section as usize)
                        .map(|s| s.title.clone())
                        .unwrap_or_default();
                    Some(Passage {
                        section: SectionRef {
                            index: chunk.section,
                            title,
                        },
                        start: chunk.start,
                        end: chunk.end,
                        text: chunk.text.clone(),
                        score: hit.score,
                    })
                })
                .collect(),
        ))
    }

    /// The stored text `id` with its index, loaded once and kept while memory allows.
    async fn load(&self, id: i64) -> Result<Arc<LoadedText>> {
        if let Some(loaded) = self.loaded.get(&id) {
            return Ok(loaded);
        }
        let _one = self.loading.lock().await;
        if let Some(loaded) = self.loaded.get(&id) {
            return Ok(loaded);
        }
        let (sections, chunks) = self.store.book_text_parts(id).await?;
        let (chunks, index) = tokio::task::spawn_blocking(move || {
            let index = Bm25Index::build(chunks.iter().map(|c| c.text.as_str()));
            (chunks, index)
        })
        .await
        .map_err(|e| Error::internal(format!("indexing a text: {e}")))?;
        let loaded = Arc::new(LoadedText {
            sections,
            chunks,
            index,
        });
        self.loaded.insert(id, loaded.clone());
        Ok(loaded)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn too_large(max: usize) -> Error {
    Error::invalid(
        "file",
        format!("文本文件不能超过 {} MiB", max / (1024 * 1024)),
        format!("The text file must be at most {} MiB", max / (1024 * 1024)),
    )
}
