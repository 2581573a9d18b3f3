//! The kinds of values settings take, and how each is read from its text form
//! (environment variables, TOML, `--set KEY=VALUE`): [`ConfigValue`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::Language;

/// A secret setting (keys, passwords): its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which kind of model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmProvider {
    /// An OpenAI-compatible HTTP API (DeepSeek, OpenAI, Ollama, vLLM, llama.cpp).
    OpenAi,
    /// A GGUF model run in this process (the `local-model` feature).
    Local,
    /// No model: questions are answered `503 MODEL_ERROR`.
    Off,
}

impl ConfigValue for Option<LlmProvider> {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "openai" => Ok(Some(LlmProvider::OpenAi)),
            "local" => Ok(Some(LlmProvider::Local)),
            "off" | "none" => Ok(Some(LlmProvider::Off)),
            _ => Err("expected `openai`, `local` or `off`".to_owned()),
        }
    }
}

/// Whether books' guides are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuideMode {
    /// Built in the background with the configured model once a book's text is ready.
    #[default]
    Auto,
    /// Never built (`GET …/guide/` says `off`).
    Off,
}

impl ConfigValue for GuideMode {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" | "on" => Ok(Self::Auto),
            "off" | "none" => Ok(Self::Off),
            _ => Err("expected `auto` or `off`".to_owned()),
        }
    }
}

/// How a remote model is asked to continue an answer a client sent unfinished (the last
/// message an `assistant` one: "continue response").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinueMode {
    /// `prefix` when the base URL is DeepSeek's beta (`…/beta`), else `instruction`.
    #[default]
    Auto,
    /// The unfinished answer is sent as the last message with `"prefix": true` and the
    /// model writes on from it (DeepSeek's beta API, llama.cpp's server).
    Prefix,
    /// The unfinished answer is sent as an assistant turn followed by a short request to
    /// go on from where it stopped without repeating it (any OpenAI-compatible API).
    Instruction,
}

impl ConfigValue for ContinueMode {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "prefix" => Ok(Self::Prefix),
            "instruction" => Ok(Self::Instruction),
            _ => Err("expected `auto`, `prefix` or `instruction`".to_owned()),
        }
    }
}

impl ContinueMode {
    /// Whether an API at `base_url` is asked to continue by prefix.
    pub fn prefix_for(self, base_url: &str) -> bool {
        match self {
            Self::Prefix => true,
            Self::Instruction => false,
            Self::Auto => base_url.trim_end_matches('/').ends_with("/beta"),
        }
    }
}

/// A value that can be read from one configuration string.
pub trait ConfigValue: Sized {
    /// Parses the text form.
    ///
    /// # Errors
    ///
    /// What was expected, as text (never echoing the value: it may be a secret).
    fn parse_value(text: &str) -> Result<Self, String>;
}

impl ConfigValue for String {
    fn parse_value(text: &str) -> Result<Self, String> {
        Ok(text.trim().to_owned())
    }
}

impl ConfigValue for Option<String> {
    fn parse_value(text: &str) -> Result<Self, String> {
        let text = text.trim();
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
}

impl ConfigValue for Option<PathBuf> {
    fn parse_value(text: &str) -> Result<Self, String> {
        Ok(Option::<String>::parse_value(text)?.map(PathBuf::from))
    }
}

impl ConfigValue for Option<Secret> {
    fn parse_value(text: &str) -> Result<Self, String> {
        Ok(Option::<String>::parse_value(text)?.map(Secret))
    }
}

macro_rules! number_config_value {
    ($($ty:ty),*) => {$(
        impl ConfigValue for $ty {
            fn parse_value(text: &str) -> Result<Self, String> {
                text.trim()
                    .parse()
                    .map_err(|_| "expected a whole number".to_owned())
            }
        }
    )*};
}
number_config_value!(u32, u64, usize);

impl ConfigValue for bool {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
}

impl ConfigValue for SocketAddr {
    fn parse_value(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "expected an address like 127.0.0.1:8080".to_owned())
    }
}

impl ConfigValue for Vec<String> {
    fn parse_value(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

impl ConfigValue for Language {
    fn parse_value(text: &str) -> Result<Self, String> {
        text.parse()
    }
}

impl ConfigValue for Option<LogFormat> {
    fn parse_value(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "pretty" | "text" => Ok(Some(LogFormat::Pretty)),
            "json" => Ok(Some(LogFormat::Json)),
            _ => Err("expected `pretty` or `json`".to_owned()),
        }
    }
}
