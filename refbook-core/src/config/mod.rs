//! Configuration: the core's settings, grouped by the service that reads them.
//!
//! Every setting has a key (used in the TOML file) and an environment variable
//! `REFBOOK_<KEY>` (upper case). Keys are flat (`llm_model`, not `llm.model`): the groups
//! are how the code holds them, not how they are written. Layers, later wins: defaults →
//! TOML file → environment → explicit overrides (command-line flags). A bad value is an
//! error naming the variable.
//!
//! [`Layers`] does the layering once for any number of groups ([`Settings`]): a front end
//! with settings of its own (the HTTP server's address and limits, the CLI's log filter)
//! declares them with [`settings_group!`](crate::settings_group) and loads them from the
//! same file and environment beside [`Config`].

mod groups;
mod layers;
mod settings;
mod settings_group;
mod values;

pub use groups::{
    AccountSettings, BookSettings, ChatSettings, ClusterSettings, DatabaseSettings,
    GeneralSettings, LlmSettings, LocalModelSettings, WechatSettings, DEFAULT_LLM_BASE_URL,
};
pub use layers::Layers;
pub use settings::{env_var_name, ConfigError, Settings};
pub use values::{ConfigValue, ContinueMode, GuideMode, LlmProvider, LogFormat, Secret};

use std::path::Path;

/// Every setting of the core, one group per service. Front ends add their own groups
/// beside it (see [`Layers`]).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The database.
    pub database: DatabaseSettings,
    /// Redis shared by several instances.
    pub cluster: ClusterSettings,
    /// Accounts and tokens.
    pub accounts: AccountSettings,
    /// WeChat mini-program login.
    pub wechat: WechatSettings,
    /// The OpenAI-compatible model.
    pub llm: LlmSettings,
    /// The model run in this process.
    pub local: LocalModelSettings,
    /// Book sources, the lookup chain and covers.
    pub books: BookSettings,
    /// Conversations and replies.
    pub chat: ChatSettings,
    /// What every service shares: the language, the public URL.
    pub general: GeneralSettings,
}

impl Settings for Config {
    fn keys(&self) -> Vec<&'static str> {
        self.groups()
            .iter()
            .flat_map(|group| group.keys())
            .collect()
    }

    fn set(&mut self, key: &str, text: &str) -> Result<bool, ConfigError> {
        for group in self.groups_mut() {
            if group.set(key, text)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Config {
    fn groups(&self) -> [&dyn Settings; 9] {
        [
            &self.database,
            &self.cluster,
            &self.accounts,
            &self.wechat,
            &self.llm,
            &self.local,
            &self.books,
            &self.chat,
            &self.general,
        ]
    }

    fn groups_mut(&mut self) -> [&mut dyn Settings; 9] {
        [
            &mut self.database,
            &mut self.cluster,
            &mut self.accounts,
            &mut self.wechat,
            &mut self.llm,
            &mut self.local,
            &mut self.books,
            &mut self.chat,
            &mut self.general,
        ]
    }

    /// The provider that answers: the configured one, else `openai` with an API key or a
    /// base URL of its own, else `local` in a build that has the local model, else `off`.
    pub fn provider(&self) -> LlmProvider {
        match self.llm.provider {
            Some(provider) => provider,
            None if self.llm.api_key.is_some() || self.llm.base_url != DEFAULT_LLM_BASE_URL => {
                LlmProvider::OpenAi
            }
            None if cfg!(feature = "local-model") => LlmProvider::Local,
            None => LlmProvider::Off,
        }
    }

    /// The context window and the longest reply, in tokens, of the model that answers.
    pub fn model_window(&self) -> (u64, u64) {
        match self.provider() {
            LlmProvider::Local => (self.local.context_tokens, self.local.max_tokens),
            LlmProvider::OpenAi | LlmProvider::Off => {
                (self.llm.context_tokens, self.llm.max_tokens)
            }
        }
    }

    /// Defaults, then the TOML file (if any), then `REFBOOK_*` variables from `env`, then
    /// `overrides` (key, value) pairs such as command-line flags. Every key of the file
    /// must be one of the core's (a front end with settings of its own uses [`Layers`]).
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
        layers.fill(&mut [&mut config])?;
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

    /// Checks settings that must agree with each other (each value was checked alone when
    /// it was read); [`load`](Self::load) calls it, a front end using [`Layers`] calls it
    /// after [`Layers::fill`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first setting that does not fit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::invalid(key, reason);
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "expected sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        if self
            .accounts
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(invalid("jwt_secret", "must be at least 32 characters long"));
        }
        if let Some(unknown) = self
            .books
            .sources
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
        if self.accounts.access_ttl_secs == 0 || self.accounts.refresh_ttl_secs == 0 {
            return Err(invalid(
                "access_ttl_secs",
                "token lifetimes must be positive",
            ));
        }
        // A reply's cap must leave the prompt room in the model's window.
        for (key, max, context, context_key) in [
            (
                "local_max_tokens",
                self.local.max_tokens,
                self.local.context_tokens,
                "local_context_tokens",
            ),
            (
                "llm_max_tokens",
                self.llm.max_tokens,
                self.llm.context_tokens,
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
        if self.chat.reply_lease_secs < 3 {
            return Err(invalid("reply_lease_secs", "must be at least 3"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
