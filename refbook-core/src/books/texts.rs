//! [`BookTexts`]: books' own texts — added whole (the same file again is a no-op; another
//! is indexed in the background while the old text goes on serving, then replaces it at
//! once), listed, removed, and searched through an in-memory index per text (keywords,
//! and the chunks' vectors when the embedder made them), loaded on first search and kept
//! within a memory bound. The background work is `text_work.rs`'.
//!
//! Who sees which text: the library's text serves every reader; a reader's own copy serves
//! that reader only, and wins over the library's for them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::text_work::{TextWork, WorkSettings};
use crate::book_text::{prepare, vector_from_bytes, Bm25Index, DenseIndex};
use crate::config::BookSettings;
use crate::domain::{
    BookTextInfo, Isbn, TextChunk, TextFormat, TextScope, TextSection, TextState, UserId,
};
use crate::embed::EmbedderSource;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{NewBookText, Store};
use crate::timestamp::Timestamp;

/// What adding a text did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedText {
    /// The text now stored.
    pub info: BookTextInfo,
    /// `false` when the same file was already the stored text (nothing changed).
    pub replaced: bool,
}

/// A stored text loaded for search.
pub(super) struct LoadedText {
    pub(super) sections: Vec<TextSection>,
    pub(super) chunks: Vec<TextChunk>,
    pub(super) index: Bm25Index,
    /// The chunks' vectors, when every chunk has one from the current embedder.
    pub(super) vectors: Option<DenseIndex>,
}

impl LoadedText {
    fn memory_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.text.len() + 48).sum();
        let sections: usize = self.sections.iter().map(|s| s.title.len() + 48).sum();
        let vectors = self.vectors.as_ref().map_or(0, DenseIndex::memory_bytes);
        chunks + sections + self.index.memory_bytes() + vectors
    }
}

/// Books' own texts.
pub struct BookTexts {
    pub(super) store: Arc<dyn Store>,
    max_bytes: usize,
    per_reader: usize,
    pub(super) embedder: Arc<EmbedderSource>,
    /// The background work (vectors, the switch to serving).
    work: TextWork,
    /// A search has started loading the embedder.
    pub(super) warming: Arc<AtomicBool>,
    /// Loaded texts by id and whether their vectors are in (a replaced text has a new id,
    /// so nothing stale is served).
    loaded: moka::sync::Cache<(i64, bool), Arc<LoadedText>>,
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
    /// The service over `store`, with the limits of `config`; chunk vectors come from
    /// `embedder`. Texts are indexed in the background on the runtime this is called on
    /// (none: only when [`work_now`](Self::work_now) is called).
    pub fn new(
        store: Arc<dyn Store>,
        config: &BookSettings,
        embedder: Arc<EmbedderSource>,
    ) -> Self {
        Self::with_work_settings(store, config, embedder, WorkSettings::default())
    }

    /// [`new`](Self::new) with the background work's timings (tests shorten them).
    pub fn with_work_settings(
        store: Arc<dyn Store>,
        config: &BookSettings,
        embedder: Arc<EmbedderSource>,
        settings: WorkSettings,
    ) -> Self {
        let budget = config.index_cache_mb.saturating_mul(1024 * 1024).max(1);
        let work = TextWork::start(store.clone(), embedder.clone(), settings);
        Self {
            store,
            max_bytes: config.text_max_bytes,
            per_reader: config.texts_per_user,
            embedder,
            work,
            warming: Arc::new(AtomicBool::new(false)),
            loaded: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_, text: &Arc<LoadedText>| {
                    u32::try_from(text.memory_bytes()).unwrap_or(u32::MAX)
                })
                .build(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Stores `bytes` (a file of `format`) as the book's text in `scope`: decoded and cut
    /// into sections and chunks here (whatever is wrong with the file is refused here),
    /// then indexed in the background while the scope's previous text goes on serving
    /// (the answer's state is `Indexing`, or `Ready` when there is no embedder). The same
    /// file again changes nothing.
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
        let latest = self.store.latest_book_text(isbn, scope).await?;
        if let Some(info) = latest
            .clone()
            .filter(|info| info.sha256 == sha256 && info.state != TextState::Failed)
        {
            return Ok(AddedText {
                info,
                replaced: false,
            });
        }
        if let (TextScope::Reader(_), None) = (scope, &latest) {
            let books: std::collections::HashSet<Isbn> = self
                .store
                .book_texts(scope)
                .await?
                .into_iter()
                .map(|text| text.isbn)
                .collect();
            if books.len() >= self.per_reader {
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
        let mut info = self
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
        if self.embedder.id().is_none() && self.store.finish_book_text(info.id).await? {
            info.state = TextState::Ready;
        } else {
            self.work.wake();
        }
        tracing::info!(isbn = %isbn, chars = info.chars, chunks = info.chunks, state = info.state.as_str(), "a book's text stored");
        Ok(AddedText {
            info,
            replaced: true,
        })
    }

    /// Does the background work now, in this task: every text with work left that no
    /// other worker holds (the CLI calls it to index what it added with a progress bar;
    /// `progress` hears `(text id, chunks with a vector, chunks)`).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn work_now(
        &self,
        progress: &(dyn Fn(i64, usize, usize) + Send + Sync),
    ) -> Result<()> {
        self.work.run_once(progress).await
    }

    /// The largest file [`add`](Self::add) takes, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The book's newest text in `scope` (serving, indexing or failed), if any.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn info(&self, isbn: &Isbn, scope: TextScope) -> Result<Option<BookTextInfo>> {
        Ok(self.store.latest_book_text(isbn, scope).await?)
    }

    /// What a reader's `GET …/text/` shows: their newest copy (in whatever state), else the
    /// library's newest text.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn status_for(&self, isbn: &Isbn, reader: UserId) -> Result<Option<BookTextInfo>> {
        if let Some(mine) = self
            .store
            .latest_book_text(isbn, TextScope::Reader(reader))
            .await?
        {
            return Ok(Some(mine));
        }
        Ok(self
            .store
            .latest_book_text(isbn, TextScope::Library)
            .await?)
    }

    /// The serving text a reader's questions about the book use (their own copy, else the
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

    /// Every text of `scope` (serving or not), by ISBN.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn list(&self, scope: TextScope) -> Result<Vec<BookTextInfo>> {
        Ok(self.store.book_texts(scope).await?)
    }

    /// Removes the book's texts in `scope` (serving and on their way); `false` when there
    /// were none.
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
        Ok(self.load(text).await?.sections.clone())
    }

    /// The stored text with its index (and its vectors, when all are in), loaded once and
    /// kept while memory allows.
    pub(super) async fn load(&self, text: &BookTextInfo) -> Result<Arc<LoadedText>> {
        let with_vectors = text.has_vectors_of(self.embedder.id());
        let key = (text.id, with_vectors);
        if let Some(loaded) = self.loaded.get(&key) {
            return Ok(loaded);
        }
        let _one = self.loading.lock().await;
        if let Some(loaded) = self.loaded.get(&key) {
            return Ok(loaded);
        }
        let (sections, chunks) = self.store.book_text_parts(text.id).await?;
        let stored = if with_vectors {
            self.store.text_vectors(text.id).await?
        } else {
            Vec::new()
        };
        let (chunks, index, vectors) = tokio::task::spawn_blocking(move || {
            let index = Bm25Index::build(chunks.iter().map(|c| c.text.as_str()));
            let vectors = stored
                .iter()
                .map(|bytes| vector_from_bytes(bytes))
                .collect::<Option<Vec<_>>>()
                .and_then(DenseIndex::new)
                .filter(|v| v.len() == chunks.len());
            (chunks, index, vectors)
        })
        .await
        .map_err(|e| Error::internal(format!("indexing a text: {e}")))?;
        let loaded = Arc::new(LoadedText {
            sections,
            chunks,
            index,
            vectors,
        });
        self.loaded.insert(key, loaded.clone());
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
