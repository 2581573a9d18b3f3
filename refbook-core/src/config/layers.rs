//! [`Layers`]: the file, the environment and the overrides, read once and applied, in
//! that order, to any group of settings.

use std::collections::BTreeMap;
use std::path::Path;

use super::settings::{env_var_name, ConfigError, Settings};

/// Where settings come from, later wins: a TOML file, `REFBOOK_*` variables, overrides
/// (command-line flags). Read once; applied to each group of settings a front end holds.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// The file's name (for errors) and its settings as text, in the file's order.
    file: Option<(String, Vec<(String, String)>)>,
    /// `REFBOOK_*` variables.
    env: BTreeMap<String, String>,
    /// Explicit (key, value) pairs.
    overrides: Vec<(String, String)>,
}

impl Layers {
    /// Reads the TOML file (if any) and keeps `env` and `overrides` for [`apply`](Self::apply).
    ///
    /// # Errors
    ///
    /// [`ConfigError::File`] when the file cannot be read or is not TOML.
    pub fn read<I>(
        file: Option<&Path>,
        env: I,
        overrides: &[(&str, String)],
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let file = file.map(read_file).transpose()?;
        Ok(Self {
            file,
            env: env
                .into_iter()
                .filter(|(name, _)| name.starts_with("REFBOOK_"))
                .collect(),
            overrides: overrides
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
        })
    }

    /// Sets every setting of `group` that a layer names: the file's value, then the
    /// variable's, then the override's.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the variable of a value of the wrong form.
    pub fn apply(&self, group: &mut dyn Settings) -> Result<(), ConfigError> {
        let keys = group.keys();
        if let Some((_, settings)) = &self.file {
            for (key, value) in settings {
                if keys.contains(&key.as_str()) {
                    group.set(key, value)?;
                }
            }
        }
        for key in &keys {
            if let Some(value) = self.env.get(&env_var_name(key)) {
                group.set(key, value)?;
            }
        }
        for (key, value) in &self.overrides {
            if keys.contains(&key.as_str()) {
                group.set(key, value)?;
            }
        }
        Ok(())
    }

    /// Applies the layers to each of `groups` and refuses a file or override key that none
    /// of them owns: how a front end loads every group it holds.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] as [`apply`](Self::apply); [`ConfigError::UnknownKey`] for
    /// the first key no group owns.
    pub fn fill(&self, groups: &mut [&mut dyn Settings]) -> Result<(), ConfigError> {
        match self.fill_ignoring_unknown(groups)?.into_iter().next() {
            None => Ok(()),
            Some(key) => {
                let in_file = self
                    .file
                    .as_ref()
                    .filter(|(_, settings)| settings.iter().any(|(k, _)| *k == key));
                let file = in_file.map_or_else(|| "overrides".to_owned(), |(f, _)| f.clone());
                Err(ConfigError::UnknownKey { key, file })
            }
        }
    }

    /// As [`fill`](Self::fill), returning the keys no group owns instead of refusing them
    /// (a front end pointed at another's file, such as the CLI at a server's).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] as [`apply`](Self::apply).
    pub fn fill_ignoring_unknown(
        &self,
        groups: &mut [&mut dyn Settings],
    ) -> Result<Vec<String>, ConfigError> {
        for group in groups.iter_mut() {
            self.apply(&mut **group)?;
        }
        let known: Vec<&'static str> = groups.iter().flat_map(|group| group.keys()).collect();
        Ok(self.unknown(&known))
    }

    /// The keys in the file or the overrides that are not in `known`.
    fn unknown(&self, known: &[&'static str]) -> Vec<String> {
        let file = self.file.iter().flat_map(|(_, settings)| settings.iter());
        file.chain(self.overrides.iter())
            .map(|(key, _)| key)
            .filter(|key| !known.contains(&key.as_str()))
            .cloned()
            .collect()
    }
}

/// The file's settings as text (arrays joined with commas, as the variables write them).
fn read_file(path: &Path) -> Result<(String, Vec<(String, String)>), ConfigError> {
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
    let settings = table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (key, text)
        })
        .collect();
    Ok((file, settings))
}
