//! Configuration shared by the server, the CLI and embedders.
//!
//! Every setting has a key (used in the TOML file) and an environment variable
//! `REFBOOK_<KEY>` (upper case). Layers, later wins: defaults → TOML file → environment →
//! explicit overrides (command-line flags). A bad value is an error naming the variable.

mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use values::{ConfigValue, LlmProvider, LogFormat, Secret};

use crate::error::Language;

/// The LLM API used when none is named: DeepSeek.
pub const DEFAULT_LLM_BASE_URL: &str = "https://api.deepseek.com";

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value of the wrong form.
    #[error("invalid value for {variable} (`{key}`): {reason}")]
    Invalid {
        /// The environment variable of the setting.
        variable: String,
        /// The TOML key of the setting.
        key: String,
        /// What was expected.
        reason: String,
    },
    /// The TOML file names a setting that does not exist.
    #[error("unknown setting `{key}` in {file}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The file it was found in.
        file: String,
    },
    /// The TOML file could not be read or parsed.
    #[error("cannot read configuration file {file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

impl ConfigError {
    /// The setting `key` has an unusable value: says so naming its variable.
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            variable: env_var_name(key),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The environment variable of a setting key.
pub fn env_var_name(key: &str) -> String {
    format!("REFBOOK_{}", key.to_ascii_uppercase())
}

macro_rules! config_fields {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr ;)*) => {
        /// Every setting of Refbook, with the contract's defaults.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        impl Config {
            /// The key of every setting (TOML key; the variable is `REFBOOK_` + upper case).
            pub const KEYS: &'static [&'static str] = &[ $( stringify!($name), )* ];

            /// Sets one setting from its text form. `Ok(false)` if the key is unknown.
            ///
            /// # Errors
            ///
            /// [`ConfigError::Invalid`] when the text is not a value of the setting's type.
            pub fn set(&mut self, key: &str, text: &str) -> Result<bool, ConfigError> {
                let invalid = |reason: String| ConfigError::invalid(key, reason);
                match key {
                    $( stringify!($name) => {
                        self.$name = <$ty as ConfigValue>::parse_value(text).map_err(invalid)?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }
        }
    };
}

config_fields! {
    /// Address the HTTP server listens on.
    bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    /// `sqlite://path` (created if missing) or `postgres://…`.
    database_url: String = "sqlite://refbook.db".to_owned();
    /// Redis shared by several instances (`redis://127.0.0.1:6379/0`): live replies,
    /// stop and revocation across instances, shared rate limits. Unset: one process needs
    /// nothing but its database.
    redis_url: Option<Secret> = None;
    /// The start of every Redis key and channel of this deployment.
    redis_prefix: String = "refbook:".to_owned();
    /// HS256 secret for access tokens; unset: generated once and kept in the database.
    jwt_secret: Option<Secret> = None;
    /// Access token lifetime in seconds.
    access_ttl_secs: u64 = 7200;
    /// Refresh token lifetime in seconds.
    refresh_ttl_secs: u64 = 604_800;
    /// Seconds after its rotation during which a refresh token presented again gets a new
    /// pair in the same session (two tabs, a retried request) instead of ending it.
    refresh_reuse_grace_secs: u64 = 10;
    /// Seconds an authenticated token or API key is remembered, so most requests skip the
    /// database (0: never). Revocations on this instance apply at once; those made on
    /// another instance once this passes.
    auth_cache_secs: u64 = 5;
    /// Base URL of the OpenAI-compatible LLM API.
    llm_base_url: String = DEFAULT_LLM_BASE_URL.to_owned();
    /// API key of the LLM (servers on your own machine, such as Ollama or llama.cpp, may
    /// need none: set `llm_base_url` alone).
    llm_api_key: Option<Secret> = None;
    /// Model name sent to the LLM.
    llm_model: String = "deepseek-reasoner".to_owned();
    /// Seconds to wait for the LLM's response headers.
    llm_connect_timeout_secs: u64 = 15;
    /// Seconds to wait for the LLM's first data (keep-alive comments do not count).
    llm_first_data_timeout_secs: u64 = 180;
    /// Seconds of silence (real data only) after which a reply counts as failed.
    llm_idle_timeout_secs: u64 = 60;
    /// The model's context window in tokens (for llama.cpp: its `-c` divided by `-np`, the
    /// context of one slot). The prompt gets this minus `llm_max_tokens`.
    llm_context_tokens: u64 = 16_384;
    /// The longest reply in tokens, reasoning included (sent as `max_tokens`).
    llm_max_tokens: u64 = 8192;
    /// Which model answers: `openai` (any OpenAI-compatible API), `local` (a GGUF model
    /// run in this process) or `off`; unset: `openai` when an API key or a base URL is set,
    /// else `local` in a build that has the local model, else `off`.
    llm_provider: Option<LlmProvider> = None;
    /// The local model: a GGUF file's path, or a model-hub file
    /// (`hf:OWNER/REPO/FILE.gguf`, or an `https://` URL) downloaded once into
    /// `local_model_cache`; unset: Qwen2.5-0.5B-Instruct (Q4_K_M) from Hugging Face.
    local_model: Option<String> = None;
    /// Where downloaded models are kept; unset: `refbook/models` in the user's cache
    /// folder (`~/.cache` on Linux).
    local_model_cache: Option<PathBuf> = None;
    /// The Hugging Face endpoint `hf:` models come from (a mirror such as
    /// `https://hf-mirror.com` where huggingface.co is slow or blocked).
    hf_endpoint: String = "https://huggingface.co".to_owned();
    /// CPU threads the local model uses (0: every core).
    local_threads: usize = 0;
    /// The local model's context window in tokens (prompt and reply).
    local_context_tokens: u64 = 4096;
    /// The longest reply of the local model, in tokens.
    local_max_tokens: u64 = 512;
    /// Book sources in lookup order.
    book_sources: Vec<String> = vec!["douban".into(), "openlibrary".into(), "googlebooks".into()];
    /// Base URL of a Douban v2-compatible service; unset: the source is skipped.
    douban_base_url: Option<String> = None;
    /// API key for the Douban-compatible service.
    douban_apikey: Option<Secret> = None;
    /// Base URL of Open Library.
    openlibrary_base_url: String = "https://openlibrary.org".to_owned();
    /// Base URL of Open Library's cover images.
    openlibrary_covers_url: String = "https://covers.openlibrary.org".to_owned();
    /// Base URL of Google Books.
    googlebooks_base_url: String = "https://www.googleapis.com".to_owned();
    /// Google Books API key (optional).
    googlebooks_api_key: Option<Secret> = None;
    /// How many days a stored book counts as fresh.
    book_ttl_days: u64 = 30;
    /// Seconds one book source may take before it counts as failed.
    book_source_timeout_secs: u64 = 8;
    /// Seconds a book no source has is remembered as missing (0: not remembered).
    book_miss_ttl_secs: u64 = 600;
    /// Hosts the cover proxy may fetch from (`*.example.com` for subdomains); empty: the
    /// known sources' image hosts.
    cover_hosts: Vec<String> = Vec::new();
    /// Serve covers through `/api/books/{isbn}/cover/` (and point `cover_url` there).
    cover_proxy: bool = true;
    /// Largest cover image kept, in bytes.
    cover_max_bytes: usize = 2 * 1024 * 1024;
    /// Public base URL of the server (`https://api.example.com`), for absolute links;
    /// unset: links are paths (`/api/…`) or built from the request's `Host`.
    public_url: Option<String> = None;
    /// WeChat mini-program app id; unset: WeChat login answers 503.
    wechat_appid: Option<String> = None;
    /// WeChat mini-program app secret.
    wechat_secret: Option<Secret> = None;
    /// Base URL of the WeChat API.
    wechat_base_url: String = "https://api.weixin.qq.com".to_owned();
    /// Origins allowed for cross-origin browser access.
    cors_origins: Vec<String> = Vec::new();
    /// Generations per minute per user and per client IP.
    chat_rate_per_min: u32 = 60;
    /// Login/register attempts per minute per IP and per username.
    login_rate_per_min: u32 = 10;
    /// Daily token quota per user; 0 = unlimited.
    daily_token_quota: u64 = 0;
    /// Log filter (`info`, `refbook_http=debug,info`, …).
    log: String = "info".to_owned();
    /// `pretty` or `json`; unset: pretty on a terminal, else JSON.
    log_format: Option<LogFormat> = None;
    /// Default language of messages (`zh` or `en`); requests may prefer English.
    language: Language = Language::Zh;
    /// Largest request body in bytes.
    body_limit_bytes: usize = 64 * 1024;
    /// Longest message content in characters.
    max_message_chars: usize = 8000;
    /// Most entries in a stateless chat's `messages` array.
    max_messages: usize = 50;
    /// Concurrent generations per user.
    max_concurrent_generations: usize = 2;
    /// Concurrent generations in this process, all users together; over it questions are
    /// answered `503 SERVER_BUSY` with `Retry-After`.
    max_generations: usize = 256;
    /// Largest reply in bytes (answer and reasoning); a reply reaching it ends as
    /// `partial` with finish reason `length`.
    llm_max_reply_bytes: usize = 1024 * 1024;
    /// Seconds running replies may take to finish at shutdown before they are stopped
    /// and stored as `partial` (`interrupted`).
    shutdown_grace_secs: u64 = 20;
    /// Seconds a reply's owner holds its claim without renewing it; a process that died
    /// mid-reply has its replies settled as `partial` once this has passed.
    reply_lease_secs: u64 = 30;
    /// Seconds the final save of a reply is retried while the database is away before the
    /// client is told it could not be stored.
    reply_save_timeout_secs: u64 = 120;
    /// Seconds a request may take to arrive, headers and body (a stalled body is `408`).
    request_timeout_secs: u64 = 30;
    /// Seconds a connection may sit with no request in flight (a new connection that
    /// sends nothing included) before it is closed. Streams in progress are not idle.
    idle_timeout_secs: u64 = 60;
    /// Most open connections; more are answered `503` and closed. 0: as many as the
    /// open-file limit allows (which is raised to its hard limit at start), at most 10,000.
    max_connections: usize = 0;
    /// Seconds of silence after which an SSE stream gets a `: keep-alive` comment.
    sse_keepalive_secs: u64 = 15;
    /// Trust `X-Forwarded-For`/`X-Real-IP` for the client address (behind a proxy only).
    trust_proxy_headers: bool = false;
    /// Serve the browser pages `/docs` (the API reference) and `/playground`.
    web: bool = true;
}

impl Config {
    /// The provider that answers: the configured one, else `openai` with an API key or a
    /// base URL of its own, else `local` in a build that has the local model, else `off`.
    pub fn provider(&self) -> LlmProvider {
        match self.llm_provider {
            Some(provider) => provider,
            None if self.llm_api_key.is_some() || self.llm_base_url != DEFAULT_LLM_BASE_URL => {
                LlmProvider::OpenAi
            }
            None if cfg!(feature = "local-model") => LlmProvider::Local,
            None => LlmProvider::Off,
        }
    }

    /// The context window and the longest reply, in tokens, of the model that answers.
    pub fn model_window(&self) -> (u64, u64) {
        match self.provider() {
            LlmProvider::Local => (self.local_context_tokens, self.local_max_tokens),
            LlmProvider::OpenAi | LlmProvider::Off => {
                (self.llm_context_tokens, self.llm_max_tokens)
            }
        }
    }

    /// Defaults, then the TOML file (if any), then `REFBOOK_*` variables from `env`, then
    /// `overrides` (key, value) pairs such as command-line flags.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an unreadable or unknown-keyed file, a value of the wrong form
    /// (naming its variable), or settings that do not go together.
    pub fn load<I>(
        file: Option<&Path>,
        env: I,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        Self::load_over(Self::default(), file, env, overrides)
    }

    /// As [`load`](Self::load), starting from `base` instead of the defaults (a front end
    /// with defaults of its own, such as the CLI's database in the user's data folder).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_over<I>(
        base: Self,
        file: Option<&Path>,
        env: I,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut config = base;
        if let Some(path) = file {
            config.apply_file(path)?;
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in Self::KEYS {
            if let Some(value) = env.get(&env_var_name(key)) {
                config.set(key, value)?;
            }
        }
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Loads from the process environment (and optionally a file and overrides).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn from_env(
        file: Option<&Path>,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError> {
        Self::load(file, std::env::vars(), overrides)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                file: file.clone(),
                reason: e.message().to_owned(),
            })?;
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            if !self.set(&key, &text)? {
                return Err(ConfigError::UnknownKey { key, file });
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::invalid(key, reason);
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "expected sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(invalid("jwt_secret", "must be at least 32 characters long"));
        }
        if let Some(unknown) = self
            .book_sources
            .iter()
            .find(|s| !crate::domain::SOURCES.contains(&s.trim().to_ascii_lowercase().as_str()))
        {
            return Err(invalid(
                "book_sources",
                &format!(
                    "unknown source `{unknown}` (known: {})",
                    crate::domain::SOURCES.join(", ")
                ),
            ));
        }
        if self.access_ttl_secs == 0 || self.refresh_ttl_secs == 0 {
            return Err(invalid(
                "access_ttl_secs",
                "token lifetimes must be positive",
            ));
        }
        // A reply's cap must leave the prompt room in the model's window.
        for (key, max, context, context_key) in [
            (
                "local_max_tokens",
                self.local_max_tokens,
                self.local_context_tokens,
                "local_context_tokens",
            ),
            (
                "llm_max_tokens",
                self.llm_max_tokens,
                self.llm_context_tokens,
                "llm_context_tokens",
            ),
        ] {
            if max == 0 || max >= context {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "must be positive and smaller than {context_key} (the prompt needs room)"
                    ),
                ));
            }
        }
        if self.provider() == LlmProvider::Local && !cfg!(feature = "local-model") {
            return Err(invalid(
                "llm_provider",
                "this build has no local model (build with the `local-model` feature)",
            ));
        }
        if self.reply_lease_secs < 3 {
            return Err(invalid("reply_lease_secs", "must be at least 3"));
        }
        if self.body_limit_bytes < 1024 {
            return Err(invalid("body_limit_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::load(None, env(&[]), &[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://refbook.db");
        assert_eq!((c.access_ttl_secs, c.refresh_ttl_secs), (7200, 604_800));
        assert_eq!(c.book_sources, ["douban", "openlibrary", "googlebooks"]);
        assert_eq!((c.chat_rate_per_min, c.login_rate_per_min), (60, 10));
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let dir = std::env::temp_dir().join(format!("refbook-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("refbook.toml");
        std::fs::write(
            &file,
            "access_ttl_secs = 60\nllm_model = \"from-file\"\nbook_sources = [\"openlibrary\"]\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("REFBOOK_LLM_MODEL", "from-env"),
                ("REFBOOK_BIND", "0.0.0.0:9000"),
            ]),
            &[("bind", "127.0.0.1:1".to_owned())],
        )
        .unwrap();
        assert_eq!(c.access_ttl_secs, 60);
        assert_eq!(c.llm_model, "from-env");
        assert_eq!(c.book_sources, ["openlibrary"]);
        assert_eq!(c.bind.to_string(), "127.0.0.1:1");
    }

    #[test]
    fn a_bad_value_names_the_variable_without_echoing_it() {
        let err = Config::load(None, env(&[("REFBOOK_ACCESS_TTL_SECS", "two hours")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REFBOOK_ACCESS_TTL_SECS"), "{err}");
        assert!(!err.contains("two hours"), "{err}");
        let err = Config::load(None, env(&[("REFBOOK_JWT_SECRET", "short")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("REFBOOK_JWT_SECRET"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::load(None, env(&[("REFBOOK_LLM_API_KEY", "sk-very-secret")]), &[]).unwrap();
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }

    #[test]
    fn the_provider_follows_what_is_set() {
        let provider =
            |pairs: &[(&str, &str)]| Config::load(None, env(pairs), &[]).unwrap().provider();
        assert_eq!(
            provider(&[("REFBOOK_LLM_API_KEY", "sk-x")]),
            LlmProvider::OpenAi
        );
        // A server of one's own (Ollama, llama.cpp) needs no key.
        assert_eq!(
            provider(&[("REFBOOK_LLM_BASE_URL", "http://127.0.0.1:11434")]),
            LlmProvider::OpenAi
        );
        let nothing = if cfg!(feature = "local-model") {
            LlmProvider::Local
        } else {
            LlmProvider::Off
        };
        assert_eq!(provider(&[]), nothing);
        // Named, it wins over a key.
        assert_eq!(
            provider(&[
                ("REFBOOK_LLM_API_KEY", "sk-x"),
                ("REFBOOK_LLM_PROVIDER", "off")
            ]),
            LlmProvider::Off
        );
    }
}
