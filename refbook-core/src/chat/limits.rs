//! [`ChatLimits`]: the limits chat enforces, and the lengths of what readers name.

use std::time::Duration;

use crate::config::ChatSettings;

/// The limits chat enforces.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    /// Daily tokens per user; 0 = unlimited.
    pub daily_token_quota: u64,
    /// Generations at once per user.
    pub max_concurrent: usize,
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// Most messages in a stateless request.
    pub max_messages: usize,
    /// The model's context window in tokens.
    pub context_tokens: i64,
    /// The longest reply in tokens (sent as `max_tokens`); the prompt gets the rest.
    pub max_tokens: u32,
    /// How long a reply's claim lasts unless its owner renews it.
    pub reply_lease: Duration,
    /// How long the final save of a reply is retried.
    pub reply_save_timeout: Duration,
    /// Generations at once in this process, all users together.
    pub max_generations: usize,
    /// Largest reply in bytes (answer and reasoning together).
    pub max_reply_bytes: usize,
}

impl ChatLimits {
    /// The limits of `config`, for a model with this `(context, longest reply)` window in
    /// tokens ([`Config::model_window`](crate::Config::model_window)) and replies of at most
    /// `max_reply_bytes`.
    pub fn new(config: &ChatSettings, window: (u64, u64), max_reply_bytes: usize) -> Self {
        Self {
            daily_token_quota: config.daily_token_quota,
            max_concurrent: config.max_concurrent_generations,
            max_message_chars: config.max_message_chars,
            max_messages: config.max_messages,
            context_tokens: i64::try_from(window.0).unwrap_or(i64::MAX),
            max_tokens: u32::try_from(window.1).unwrap_or(u32::MAX),
            reply_lease: Duration::from_secs(config.reply_lease_secs.max(3)),
            reply_save_timeout: Duration::from_secs(config.reply_save_timeout_secs),
            max_generations: config.max_generations.max(1),
            max_reply_bytes: max_reply_bytes.max(1),
        }
    }

    /// Tokens a prompt may use: the context minus the reply's share.
    pub fn prompt_budget(&self) -> i64 {
        self.context_tokens - i64::from(self.max_tokens)
    }
}

/// The longest conversation title, in characters (after trimming).
pub const TITLE_MAX_CHARS: usize = 100;
/// The longest persona name, in characters (after trimming).
pub const PERSONA_NAME_MAX_CHARS: usize = 32;
/// The longest persona description, in characters (after trimming).
pub const PERSONA_DESCRIPTION_MAX_CHARS: usize = 2000;
