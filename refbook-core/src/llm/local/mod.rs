//! [`LocalModel`]: a GGUF model run in this process on the CPU with candle (quantized
//! weights of the `llama` family — SmolLM2, Llama — or of `qwen2` — Qwen2, Qwen2.5).
//! One worker thread owns the weights and answers one request at a time, in arrival order;
//! requests beyond it wait in a bounded queue. A reply whose stream is dropped stops at the
//! next token.

mod download;
mod gguf_vocab;
mod lazy;
mod model_ref;
mod settings;
mod weights;
mod worker;

use std::path::Path;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::llm::{ChatModel, ChatRequest, ModelError, ModelEvent, ModelStream};
pub use download::{DownloadError, Downloader};
pub use gguf_vocab::GgufVocab;
pub use lazy::LazyLocalModel;
pub use model_ref::{cache_folder, ModelRef, Remote, DEFAULT_LOCAL_MODEL};
pub use settings::LocalSettings;
pub use weights::SUPPORTED as SUPPORTED_ARCHITECTURES;

/// Requests that may wait for the model beyond the one it is answering.
const QUEUE: usize = 64;

/// A GGUF model answering in this process.
#[derive(Debug, Clone)]
pub struct LocalModel {
    name: String,
    jobs: mpsc::Sender<worker::Job>,
}

impl LocalModel {
    /// Loads the model (on a thread of its own, which then serves every request).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the file cannot be read or is not a supported model.
    pub async fn load(settings: LocalSettings) -> Result<Self, ModelError> {
        let name = model_name(&settings.path);
        let (jobs, queue) = mpsc::channel(QUEUE);
        let (ready, loaded) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("refbook-local-model".into())
            .spawn(move || worker::run(settings, ready, queue))
            .map_err(|e| ModelError::Stream(format!("cannot start the model thread: {e}")))?;
        loaded
            .await
            .map_err(|_| ModelError::Stream("the model thread ended while loading".into()))??;
        Ok(Self { name, jobs })
    }
}

/// The file's name without `.gguf`, as the model's name.
fn model_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("local")
        .to_owned()
}

#[async_trait]
impl ChatModel for LocalModel {
    fn model_name(&self) -> &str {
        &self.name
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError> {
        let (events, mut received) = mpsc::channel::<Result<ModelEvent, ModelError>>(64);
        self.jobs
            .send(worker::Job { request, events })
            .await
            .map_err(|_| ModelError::Stream("the local model has stopped".into()))?;
        // The first event tells whether the model accepted the request at all.
        let first = match received.recv().await {
            Some(Err(err)) => return Err(err),
            Some(Ok(event)) => event,
            None => return Err(ModelError::Stream("the local model gave no answer".into())),
        };
        let rest = futures::stream::unfold(received, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        });
        Ok(Box::pin(futures::StreamExt::chain(
            futures::stream::iter([Ok(first)]),
            rest,
        )))
    }
}
