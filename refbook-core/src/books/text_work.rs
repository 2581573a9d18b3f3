//! [`TextWork`]: the background work on books' texts. A text is stored whole in state
//! `indexing`; this work computes its chunks' vectors in batches (each batch stored as it
//! is made, so an interrupted run resumes where the vectors stop), then makes it the
//! serving text in one step. Serving texts whose vectors are missing (the embedder was
//! unavailable, or is another model now) get them the same way.
//!
//! Readers come first: before each batch the work waits (up to
//! [`WorkSettings::readers_first_for`]) while the local model is answering a reader on the
//! same cores. A worker holds a text by a lease in the database, renewed after each batch; when a
//! process dies, the lease runs out and any instance (or the CLI) takes the work up. With
//! no embedder, or while it cannot be had, texts become serving at once, keywords only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::background::{self, lease_end};
use crate::book_text::vector_bytes;
use crate::domain::{BookTextInfo, TextState};
use crate::embed::{Embedder, EmbedderSource};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// Timings of the background work.
#[derive(Debug, Clone, Copy)]
pub struct WorkSettings {
    /// How long a worker holds a text between renewals (a dead worker's text waits this
    /// long before another takes it up).
    pub lease: Duration,
    /// How often the database is looked at for work (texts added by another process, or
    /// left behind by a dead one); work added here is started at once.
    pub poll: Duration,
    /// Chunks embedded and stored together; background work steps aside for readers'
    /// answers between batches.
    pub batch: usize,
    /// The longest indexing waits, before each batch, for readers' answers computed on
    /// this machine (the local model's) to end; then one batch goes through anyway.
    pub readers_first_for: Duration,
}

impl Default for WorkSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            poll: Duration::from_secs(30),
            batch: 8,
            readers_first_for: Duration::from_secs(30),
        }
    }
}

/// The background work's handle: wake it, or run it in the caller's task.
pub(crate) struct TextWork {
    inner: Arc<Worker>,
    wake: Arc<Notify>,
}

struct Worker {
    store: Arc<dyn Store>,
    embedder: Arc<EmbedderSource>,
    settings: WorkSettings,
    /// The handle is gone: a pass under way stops at its next batch (its lease runs out
    /// and whoever works next resumes where its vectors stop).
    stopped: AtomicBool,
}

/// Hears `(text id, chunks with a vector, chunks)` as the work goes on.
type Progress<'a> = &'a (dyn Fn(i64, usize, usize) + Send + Sync);

impl TextWork {
    /// The work over `store`, running in the background on the current runtime (if any)
    /// until the handle is dropped.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        embedder: Arc<EmbedderSource>,
        settings: WorkSettings,
    ) -> Self {
        let inner = Arc::new(Worker {
            store,
            embedder,
            settings,
            stopped: AtomicBool::new(false),
        });
        let wake = Arc::new(Notify::new());
        background::spawn(&inner, wake.clone());
        Self { inner, wake }
    }

    /// Looks for work now (a text was added, or a search wants the embedder).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Does the work there is now, in the caller's task.
    pub(crate) async fn run_once(&self, progress: Progress<'_>) -> Result<()> {
        self.inner.run_once(progress).await.map(|_| ())
    }
}

impl Drop for TextWork {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl background::Worker for Worker {
    const WORK: &'static str = "indexing books' texts";

    fn poll(&self) -> Duration {
        self.settings.poll
    }

    async fn run_once(&self) -> Result<bool> {
        Worker::run_once(self, &|_, _, _| {}).await
    }
}

impl Worker {
    /// One pass over the texts with work left; whether anything was done.
    async fn run_once(&self, progress: Progress<'_>) -> Result<bool> {
        let model = self.embedder.id();
        let texts = self.store.texts_to_index(model, Timestamp::now()).await?;
        if texts.is_empty() {
            return Ok(false);
        }
        let embedder = match model {
            Some(_) => self.embedder.get().await,
            None => None,
        };
        let mut worked = false;
        for text in texts {
            match &embedder {
                // Keywords only, for now: serve it as it is.
                None => {
                    if text.state == TextState::Indexing
                        && self.store.finish_book_text(text.id).await?
                    {
                        tracing::info!(isbn = %text.isbn, "a book's text serves (keywords only)");
                        worked = true;
                    }
                }
                Some(embedder) => {
                    let now = Timestamp::now();
                    if self
                        .store
                        .lease_book_text(text.id, lease_end(self.settings.lease), now)
                        .await?
                    {
                        self.embed_text(&text, embedder.clone(), progress).await?;
                        worked = true;
                    }
                }
            }
        }
        Ok(worked)
    }

    /// Computes the text's missing vectors, batch by batch, then serves it.
    async fn embed_text(
        &self,
        text: &BookTextInfo,
        embedder: Arc<dyn Embedder>,
        progress: Progress<'_>,
    ) -> Result<()> {
        let mut done = self
            .store
            .start_text_vectors(text.id, embedder.id())
            .await?;
        let (_, chunks) = self.store.book_text_parts(text.id).await?;
        let total = chunks.len();
        progress(text.id, done.min(total), total);
        for batch in chunks
            .get(done..)
            .unwrap_or_default()
            .chunks(self.settings.batch.max(1))
        {
            if self.stopped.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self
                .embedder
                .foreground()
                .idle(self.settings.readers_first_for)
                .await
            {
                self.store
                    .renew_book_text_lease(text.id, lease_end(self.settings.lease))
                    .await?;
            }
            let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
            let model = embedder.clone();
            let made = tokio::task::spawn_blocking(move || {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                model
                    .embed(&texts)
                    .and_then(|vectors| match vectors.len() == texts.len() {
                        true => Ok(vectors),
                        false => Err("the embedder gave the wrong number of vectors".into()),
                    })
            })
            .await
            .map_err(|e| Error::internal(format!("embedding a text: {e}")))?;
            let vectors = match made {
                Ok(vectors) => vectors,
                Err(why) => {
                    tracing::warn!(isbn = %text.isbn, error = %why, "the embedder failed on a book's text");
                    if text.state == TextState::Indexing {
                        let error = format!("the embedder failed: {why}");
                        self.store.fail_book_text(text.id, &error).await?;
                    }
                    return Ok(());
                }
            };
            let bytes: Vec<Vec<u8>> = vectors.iter().map(|v| vector_bytes(v)).collect();
            self.store.put_text_vectors(text.id, done, &bytes).await?;
            done += bytes.len();
            self.store
                .renew_book_text_lease(text.id, lease_end(self.settings.lease))
                .await?;
            progress(text.id, done, total);
        }
        if text.state == TextState::Indexing && self.store.finish_book_text(text.id).await? {
            tracing::info!(isbn = %text.isbn, chunks = total, "a book's text serves, with vectors");
        }
        Ok(())
    }
}
