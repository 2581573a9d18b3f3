//! [`LocalModel`]: a GGUF model run in this process on the CPU with candle (quantized
//! weights of the `llama` family — SmolLM2, Llama — or of `qwen2` — Qwen2, Qwen2.5).
//! One worker thread owns the weights and answers one request at a time, readers' questions
//! before background work (which yields to them between its steps); requests beyond it
//! wait in a bounded queue, each at most its timeout. Each prompt resumes from the longest
//! cached beginning of it (a conversation's next question processes only what is new). A
//! reply whose stream is dropped stops at the next token. Readers' answers are announced
//! to the [`Foreground`] so that embedding a book's text waits for them.

mod download;
mod gguf_vocab;
mod json_prefix;
mod json_sampling;
mod kv_cache;
mod lazy;
mod model_ref;
mod prefix_cache;
mod queue;
mod requantize;
mod settings;
mod tiled;
mod transformer;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::foreground::Foreground;
use crate::llm::{
    ChatModel, ChatRequest, LocalModelReport, ModelError, ModelEvent, ModelStream, Priority,
};
pub use download::{DownloadError, Downloader};
pub use gguf_vocab::GgufVocab;
pub use lazy::LazyLocalModel;
pub use model_ref::{cache_folder, ModelRef, Remote, DEFAULT_LOCAL_MODEL};
pub use settings::LocalSettings;
pub use transformer::SUPPORTED as SUPPORTED_ARCHITECTURES;

/// Requests that may wait for the model beyond the one it is answering.
const QUEUE: usize = 64;

/// A GGUF model answering in this process.
#[derive(Debug, Clone)]
pub struct LocalModel {
    name: String,
    jobs: mpsc::Sender<queue::Job>,
    counters: Arc<queue::Counters>,
    queue_timeout: Duration,
    foreground: Arc<Foreground>,
}

impl LocalModel {
    /// Loads the model (on a thread of its own, which then serves every request).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the file cannot be read or is not a supported model.
    pub async fn load(settings: LocalSettings) -> Result<Self, ModelError> {
        let name = model_name(&settings.path);
        let queue_timeout = settings.queue_timeout;
        let foreground = settings.foreground.clone();
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let counters = Arc::new(queue::Counters::default());
        let queue = queue::Queue::new(receiver, counters.clone());
        let (ready, loaded) = tokio::sync::oneshot::channel();
        let for_worker = counters.clone();
        std::thread::Builder::new()
            .name("refbook-local-model".into())
            .spawn(move || worker::run(settings, ready, queue, for_worker))
            .map_err(|e| ModelError::Stream(format!("cannot start the model thread: {e}")))?;
        loaded
            .await
            .map_err(|_| ModelError::Stream("the model thread ended while loading".into()))??;
        Ok(Self {
            name,
            jobs,
            counters,
            queue_timeout,
            foreground,
        })
    }
}

/// The file's name without `.gguf`, as the model's name.
fn model_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("local")
        .to_owned()
}

impl LocalModel {
    /// Counts a request given up after waiting `seconds` (the worker skips it: its
    /// receiver is gone).
    fn refuse_busy(&self, seconds: u64) -> ModelError {
        self.counters
            .refused_busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            waited_s = seconds,
            "local model queue timeout: question refused"
        );
        ModelError::Busy(seconds)
    }
}

#[async_trait]
impl ChatModel for LocalModel {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn local_report(&self) -> Option<LocalModelReport> {
        Some(self.counters.report())
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError> {
        let (events, mut received) = mpsc::channel::<Result<ModelEvent, ModelError>>(64);
        let queued = Instant::now();
        let priority = request.priority;
        // A reader's answer holds background work on this CPU back from now until its
        // stream ends (or is dropped).
        let answer = (priority == Priority::Interactive).then(|| self.foreground.enter());
        let job = queue::Job {
            request,
            events,
            queued,
        };
        let waited = |queued: Instant| queued.elapsed().as_secs();
        match tokio::time::timeout(self.queue_timeout, self.jobs.reserve()).await {
            Ok(Ok(permit)) => {
                self.counters.sent(priority);
                permit.send(job);
            }
            Ok(Err(_)) => return Err(ModelError::Stream("the local model has stopped".into())),
            Err(_) => return Err(self.refuse_busy(waited(queued))),
        }
        // The first event (sent when the model takes the request) tells whether it
        // accepted it at all; a request that waits longer than its timeout is refused.
        let first = match tokio::time::timeout(
            self.queue_timeout.saturating_sub(queued.elapsed()),
            received.recv(),
        )
        .await
        {
            Err(_) => return Err(self.refuse_busy(waited(queued))),
            Ok(Some(Err(err))) => return Err(err),
            Ok(Some(Ok(event))) => event,
            Ok(None) => return Err(ModelError::Stream("the local model gave no answer".into())),
        };
        let rest = futures::stream::unfold((received, answer), |(mut rx, answer)| async move {
            rx.recv().await.map(|event| (event, (rx, answer)))
        });
        Ok(Box::pin(futures::StreamExt::chain(
            futures::stream::iter([Ok(first)]),
            rest,
        )))
    }
}
