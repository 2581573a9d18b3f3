//! What every group of settings is: the [`Settings`] trait [`Layers`](super::Layers)
//! fills, and the [`ConfigError`] a bad value gives.

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
    /// The TOML file (or an override) names a setting that does not exist.
    #[error("unknown setting `{key}` in {file}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The file it was found in (or `overrides`).
        file: String,
    },
    /// The TOML file could not be read or parsed.
    #[error("cannot read configuration file {file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// Why it could not be used.
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

/// A group of settings that [`Layers`](super::Layers) can fill: the keys it owns, and how one is set from
/// its text form. [`settings_group!`](crate::settings_group) writes both.
pub trait Settings {
    /// The key of every setting of the group.
    fn keys(&self) -> Vec<&'static str>;

    /// Sets one setting from its text form. `Ok(false)` if the key is not the group's.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the text is not a value of the setting's type.
    fn set(&mut self, key: &str, text: &str) -> Result<bool, ConfigError>;
}
