//! [`LazyLocalModel`]: the local model as a server or the CLI holds it before its first
//! question — the file found or downloaded, then the weights loaded, once, when first
//! needed (or when [`ChatModel::prepare`] asks early).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::download::{DownloadError, Downloader};
use super::model_ref::{cache_folder, ModelRef};
use super::settings::LocalSettings;
use super::LocalModel;
use crate::llm::{
    ChatModel, ChatRequest, DownloadProgress, LocalModelReport, ModelError, ModelStream,
};

/// A local model loaded on first use.
pub struct LazyLocalModel {
    name: String,
    source: ModelRef,
    cache: Option<PathBuf>,
    settings: LocalSettings,
    downloader: Downloader,
    progress: Arc<dyn DownloadProgress>,
    model: OnceCell<LocalModel>,
    /// A load is under way (set while [`ChatModel::prepare`] or a first question loads).
    loading: AtomicBool,
}

impl LazyLocalModel {
    /// The model `source` names; `settings.path` is replaced by the file found. Downloads
    /// go under `cache` and report to `progress`.
    pub fn new(
        source: ModelRef,
        cache: Option<PathBuf>,
        settings: LocalSettings,
        downloader: Downloader,
        progress: Arc<dyn DownloadProgress>,
    ) -> Self {
        let path = match &source {
            ModelRef::File(path) => path.clone(),
            ModelRef::Remote(remote) => remote.cache_path.clone(),
        };
        Self {
            name: super::model_name(&path),
            source,
            cache,
            settings,
            downloader,
            progress,
            model: OnceCell::new(),
            loading: AtomicBool::new(false),
        }
    }

    /// The model, loaded (and first downloaded) if this is the first call; callers that
    /// come meanwhile wait for the same load.
    async fn loaded(&self) -> Result<&LocalModel, ModelError> {
        self.loading.store(true, Ordering::SeqCst);
        let loaded = self
            .model
            .get_or_try_init(|| async {
                let path = self.file().await?;
                let model = LocalModel::load(LocalSettings {
                    path: path.clone(),
                    ..self.settings.clone()
                })
                .await?;
                tracing::info!(model = %self.name, path = %path.display(), "local model loaded");
                Ok(model)
            })
            .await;
        self.loading.store(false, Ordering::SeqCst);
        loaded
    }

    /// The model's file on this machine, downloaded first if it is remote and not cached.
    async fn file(&self) -> Result<PathBuf, ModelError> {
        let remote = match &self.source {
            ModelRef::File(path) if path.is_file() => return Ok(path.clone()),
            ModelRef::File(path) => {
                return Err(ModelError::Unavailable(format!(
                "the local model file {} does not exist; set REFBOOK_LOCAL_MODEL to a GGUF file",
                path.display()
            )))
            }
            ModelRef::Remote(remote) => remote,
        };
        let folder = cache_folder(self.cache.as_deref()).ok_or_else(|| {
            ModelError::Unavailable(
                "no cache folder for the downloaded model: set REFBOOK_LOCAL_MODEL_CACHE".into(),
            )
        })?;
        let dest = folder.join(&remote.cache_path);
        self.downloader
            .fetch(remote, &dest, self.progress.as_ref())
            .await
            .map_err(|err| ModelError::Unavailable(explain(&err)))?;
        Ok(dest)
    }
}

/// A download failure, with what to do about it.
fn explain(err: &DownloadError) -> String {
    match err {
        DownloadError::Unreachable { .. } | DownloadError::Cut { .. } => format!(
            "the local model is not downloaded yet and {err}. Without network access, copy \
             a GGUF file to this machine and set REFBOOK_LOCAL_MODEL to its path (or \
             REFBOOK_HF_ENDPOINT to a reachable mirror, or REFBOOK_LLM_BASE_URL for a remote \
             model)"
        ),
        DownloadError::Status {
            status: 401 | 403, ..
        } => format!("{err}: the repository is gated or private; download the file yourself and set REFBOOK_LOCAL_MODEL to its path"),
        _ => format!("the local model could not be downloaded: {err}"),
    }
}

#[async_trait]
impl ChatModel for LazyLocalModel {
    fn model_name(&self) -> &str {
        &self.name
    }

    async fn prepare(&self) -> Result<(), ModelError> {
        self.loaded().await.map(|_| ())
    }

    /// Answers with the loaded model. While a load is under way (the server prepares the
    /// model at start), a question is told at once that the model is not ready rather
    /// than held for minutes of download; with no load under way (a terminal's first
    /// question) it starts one and waits for it.
    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError> {
        let model = match self.model.get() {
            Some(model) => model,
            None if self.loading.load(Ordering::SeqCst) => {
                return Err(ModelError::Unavailable(format!(
                    "the local model {} is being downloaded or loaded; ask again shortly",
                    self.name
                )))
            }
            None => self.loaded().await?,
        };
        model.stream(request).await
    }

    fn local_report(&self) -> Option<LocalModelReport> {
        self.model.get().and_then(ChatModel::local_report)
    }
}
