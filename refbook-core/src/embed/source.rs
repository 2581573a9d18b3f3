//! [`EmbedderSource`]: the embedder a server or the CLI uses, had on first need — loaded
//! from a folder, or downloaded once from the hub into the model cache and loaded. While
//! it cannot be had (offline, refused, broken), callers get `None`, the log says so once,
//! and another try comes after [`RETRY_AFTER`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{EmbedRef, Embedder};
use crate::foreground::Foreground;

/// How long after a failed try the next one waits.
pub const RETRY_AFTER: Duration = Duration::from_secs(300);

enum State {
    NotTried,
    Loaded(Arc<dyn Embedder>),
    Failed(Instant),
}

/// Where the embedder comes from, and the embedder once had.
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
pub struct EmbedderSource {
    reference: EmbedRef,
    /// The id its vectors carry (known before it is loaded).
    id: Option<String>,
    cache: Option<PathBuf>,
    hf_endpoint: String,
    state: Mutex<State>,
    /// One load at a time.
    loading: tokio::sync::Mutex<()>,
    /// The first failure has been logged.
    warned: AtomicBool,
    /// Readers' answers on this machine's CPU, which indexing waits for.
    foreground: Arc<Foreground>,
}

impl std::fmt::Debug for EmbedderSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderSource")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl EmbedderSource {
    /// No embedder: keyword search only.
    pub fn off() -> Self {
        Self::new(EmbedRef::Off, None, String::new())
    }

    /// An embedder already built (tests, embedding applications).
    pub fn provided(embedder: Arc<dyn Embedder>) -> Self {
        let mut source = Self::off();
        source.id = Some(embedder.id().to_owned());
        source.state = Mutex::new(State::Loaded(embedder));
        source
    }

    /// The embedder `reference` names; hub models are downloaded under `cache` (the
    /// local model's cache) from `hf_endpoint`.
    pub fn new(reference: EmbedRef, cache: Option<PathBuf>, hf_endpoint: String) -> Self {
        let id = (reference != EmbedRef::Off).then(|| reference.id());
        Self {
            reference,
            id,
            cache,
            hf_endpoint,
            state: Mutex::new(State::NotTried),
            loading: tokio::sync::Mutex::new(()),
            warned: AtomicBool::new(false),
            foreground: Foreground::new(),
        }
    }

    /// Readers' answers computed on this machine (a local model announces them here):
    /// embedding books' texts in the background waits for them between batches.
    pub fn foreground(&self) -> &Arc<Foreground> {
        &self.foreground
    }

    /// The id of the vectors this embedder makes; `None` when there is none.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The embedder if it is loaded now (never waits).
    pub fn ready(&self) -> Option<Arc<dyn Embedder>> {
        match &*self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            State::Loaded(embedder) => Some(embedder.clone()),
            _ => None,
        }
    }

    /// The embedder, loaded (and first downloaded) if this is the first need; `None` when
    /// there is none, or it cannot be had now.
    pub async fn get(&self) -> Option<Arc<dyn Embedder>> {
        self.id.as_ref()?;
        if let Some(embedder) = self.ready() {
            return Some(embedder);
        }
        let _one = self.loading.lock().await;
        {
            let state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*state {
                State::Loaded(embedder) => return Some(embedder.clone()),
                State::Failed(at) if at.elapsed() < RETRY_AFTER => return None,
                _ => {}
            }
        }
        let loaded = self.load().await;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match loaded {
            Ok(embedder) => {
                if self.warned.load(Ordering::Relaxed) {
                    tracing::info!(model = %embedder.id(), "the embedder is back: vectors are filled in");
                } else {
                    tracing::info!(model = %embedder.id(), "embedder loaded");
                }
                *state = State::Loaded(embedder.clone());
                Some(embedder)
            }
            Err(why) => {
                if self.warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %why, "the embedder is still unavailable");
                } else {
                    tracing::warn!(
                        error = %why,
                        "no embedder: search in books' texts uses keywords only until it can be \
                         had (set REFBOOK_EMBED_MODEL to a local folder, or `off`)"
                    );
                }
                *state = State::Failed(Instant::now());
                None
            }
        }
    }

    #[cfg(feature = "local-model")]
    async fn load(&self) -> Result<Arc<dyn Embedder>, String> {
        let id = self.reference.id();
        let folder = match &self.reference {
            EmbedRef::Off => return Err("off".into()),
            EmbedRef::Folder(folder) => folder.clone(),
            EmbedRef::Hub { repo, revision } => self.download(repo, revision).await?,
        };
        tokio::task::spawn_blocking(move || super::BertEmbedder::load(&folder, id))
            .await
            .map_err(|e| e.to_string())?
            .map(|embedder| Arc::new(embedder) as Arc<dyn Embedder>)
    }

    #[cfg(not(feature = "local-model"))]
    async fn load(&self) -> Result<Arc<dyn Embedder>, String> {
        Err("this build has no embedder (the `local-model` feature)".into())
    }

    /// The hub model's files in the cache, downloaded first where missing.
    #[cfg(feature = "local-model")]
    async fn download(&self, repo: &str, revision: &str) -> Result<PathBuf, String> {
        use crate::llm::local::{cache_folder, Downloader, ModelRef};
        use crate::llm::LogProgress;
        let (needed, optional) = super::EMBED_MODEL_FILES;
        let cache = cache_folder(self.cache.as_deref())
            .ok_or("no cache folder for the embedder: set REFBOOK_LOCAL_MODEL_CACHE")?;
        let downloader = Downloader::new(crate::upstream::USER_AGENT).map_err(|e| e.to_string())?;
        let progress = LogProgress::default();
        let mut folder = None;
        for (file, required) in needed
            .iter()
            .map(|f| (f, true))
            .chain(optional.iter().map(|f| (f, false)))
        {
            let reference = format!("hf:{repo}@{revision}/{file}");
            let ModelRef::Remote(remote) = ModelRef::parse(&reference, &self.hf_endpoint)? else {
                return Err(format!("{reference} is not on the hub"));
            };
            let dest = cache.join(&remote.cache_path);
            match downloader.fetch(&remote, &dest, &progress).await {
                Ok(()) => {}
                Err(err) if required => return Err(err.to_string()),
                Err(err) => tracing::debug!(file, error = %err, "optional embedder file"),
            }
            if *file == "config.json" {
                folder = dest.parent().map(std::path::Path::to_path_buf);
            }
        }
        folder.ok_or_else(|| "no folder for the embedder".into())
    }
}
