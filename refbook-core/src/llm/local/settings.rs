//! [`LocalSettings`]: how a local model is run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::foreground::Foreground;

/// How to run a local model.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// The GGUF file.
    pub path: PathBuf,
    /// CPU threads for one generation (0: all cores).
    pub threads: usize,
    /// The context window in tokens: prompt and reply together.
    pub context_tokens: usize,
    /// The longest reply in tokens when a request names none.
    pub max_reply_tokens: usize,
    /// Memory for keys and values, in bytes: recent prompts' caches and the answer in
    /// progress together (0: no prompt kept).
    pub cache_bytes: usize,
    /// The longest a question waits for the model before it is refused as busy.
    pub queue_timeout: Duration,
    /// Where readers' answers are announced while they wait for the model or are being
    /// computed, so that background work on the same CPU (embedding a book's text) steps
    /// aside; share the one the books' [`EmbedderSource`](crate::embed::EmbedderSource)
    /// has.
    pub foreground: Arc<Foreground>,
}

impl LocalSettings {
    /// The settings for `path` with the server's defaults: every core, a 4,096-token
    /// window, replies up to 512 tokens, a 256 MB prefix cache, 30 s in the queue at most,
    /// a foreground of its own.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threads: 0,
            context_tokens: 4096,
            max_reply_tokens: 512,
            cache_bytes: 256 << 20,
            queue_timeout: Duration::from_secs(30),
            foreground: Foreground::new(),
        }
    }
}
