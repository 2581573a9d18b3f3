//! [`LocalSettings`]: how a local model is run.

use std::path::PathBuf;

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
}
