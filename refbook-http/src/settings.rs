//! The server's own settings ([`HttpSettings`]) and everything a server loads
//! ([`ServerConfig`]: the core's settings and these, from one file and environment).

use std::net::SocketAddr;
use std::path::Path;

use refbook_core::config::{ConfigError, Layers, LogFormat, Settings};
use refbook_core::Config;

refbook_core::settings_group! {
    /// What only the HTTP server reads: where it listens, what it lets in, how it streams.
    pub struct HttpSettings {
        /// Address the HTTP server listens on.
        bind ("bind"): SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        /// Origins allowed for cross-origin browser access.
        cors_origins ("cors_origins"): Vec<String> = Vec::new();
        /// Generations per minute per user and per client IP.
        chat_rate_per_min ("chat_rate_per_min"): u32 = 60;
        /// Login/register attempts per minute per IP and per username.
        login_rate_per_min ("login_rate_per_min"): u32 = 10;
        /// Log filter (`info`, `refbook_http=debug,info`, …).
        log ("log"): String = "info".to_owned();
        /// `pretty` or `json`; unset: pretty on a terminal, else JSON.
        log_format ("log_format"): Option<LogFormat> = None;
        /// Largest request body in bytes.
        body_limit_bytes ("body_limit_bytes"): usize = 64 * 1024;
        /// Seconds a request may take to arrive, headers and body (a stalled body is `408`).
        request_timeout_secs ("request_timeout_secs"): u64 = 30;
        /// Seconds a connection may sit with no request in flight (a new connection that
        /// sends nothing included) before it is closed. Streams in progress are not idle.
        idle_timeout_secs ("idle_timeout_secs"): u64 = 60;
        /// Most open connections; more are answered `503` and closed. 0: as many as the
        /// open-file limit allows (which is raised to its hard limit at start), at most
        /// 10,000.
        max_connections ("max_connections"): usize = 0;
        /// Seconds of silence after which an SSE stream gets a `: keep-alive` comment.
        sse_keepalive_secs ("sse_keepalive_secs"): u64 = 15;
        /// Trust `X-Forwarded-For`/`X-Real-IP` for the client address (behind a proxy only).
        trust_proxy_headers ("trust_proxy_headers"): bool = false;
        /// Serve the browser pages `/docs` (the API reference) and `/playground`.
        web ("web"): bool = true;
        /// Seconds running replies may take to finish at shutdown before they are stopped
        /// and stored as `partial` (`interrupted`).
        shutdown_grace_secs ("shutdown_grace_secs"): u64 = 20;
        /// A request header that marks a `/v1` chat completion as a client's housekeeping
        /// task (a title, tags, follow-ups) rather than a reader's question, when a proxy
        /// or client sets it; unset: only Open WebUI's `### Task:` prompts are recognised.
        openai_task_header ("openai_task_header"): Option<String> = None;
    }
}

impl HttpSettings {
    /// Checks values that are of the right form but unusable.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid(
                "body_limit_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }
}

/// Everything a server is configured with: the core's settings and its own.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The core's settings (database, model, books, accounts, chat, …).
    pub core: Config,
    /// The server's own.
    pub http: HttpSettings,
}

impl ServerConfig {
    /// Defaults, then the TOML file (if any), then `REFBOOK_*` variables from `env`, then
    /// `overrides`; every key of the file must be the core's or the server's.
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
        let layers = Layers::read(file, env, overrides)?;
        let mut config = Self::default();
        layers.fill(&mut [&mut config.core, &mut config.http])?;
        config.core.validate()?;
        config.http.validate()?;
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

    /// Whether `key` names a setting of the core or of the server.
    pub fn is_key(&self, key: &str) -> bool {
        self.core.keys().contains(&key) || self.http.keys().contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_and_environment_fill_both_groups() {
        let dir = std::env::temp_dir().join(format!("refbook-http-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("refbook.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9000\"\nllm_model = \"from-file\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&file),
            [("REFBOOK_LOGIN_RATE_PER_MIN".to_owned(), "3".to_owned())],
            &[("bind", "127.0.0.1:1".to_owned())],
        )
        .unwrap();
        assert_eq!(config.http.bind.to_string(), "127.0.0.1:1");
        assert_eq!(config.http.login_rate_per_min, 3);
        assert_eq!(config.core.llm.model, "from-file");
        assert!(config.is_key("bind") && config.is_key("llm_model"));
        assert!(!config.is_key("bnid"));

        std::fs::write(&file, "bnid = \"0.0.0.0:9000\"\n").unwrap();
        let err = ServerConfig::load(Some(&file), [], &[]).unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
        let err =
            ServerConfig::load(None, [], &[("body_limit_bytes", "10".to_owned())]).unwrap_err();
        assert!(
            err.to_string().contains("REFBOOK_BODY_LIMIT_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn no_key_is_both_the_cores_and_the_servers() {
        let config = ServerConfig::default();
        for key in config.http.keys() {
            assert!(!config.core.keys().contains(&key), "{key}");
        }
    }
}
