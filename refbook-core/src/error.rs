//! The library's error type: every failure says its [`ErrorKind`] so a front end can map it
//! to a status (HTTP) or an exit code (CLI) in one place, and carries a message in both of
//! the product's languages.

use std::borrow::Cow;
use std::time::Duration;

/// What kind of failure an [`Error`] is; front ends map kinds, never messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is malformed or fails validation.
    InvalidInput,
    /// Missing, invalid, expired or revoked credentials.
    Unauthorized,
    /// The user's token quota for the period is used up.
    QuotaExceeded,
    /// No such resource (or it belongs to someone else).
    NotFound,
    /// The resource exists already, or a conflicting operation is running.
    Conflict,
    /// A rate or concurrency limit was hit.
    RateLimited,
    /// The LLM upstream failed, timed out or is not configured.
    ModelUnavailable,
    /// Every book source failed.
    UpstreamUnavailable,
    /// The server is at its limit of concurrent replies; try again shortly.
    Busy,
    /// Anything unexpected: a bug, the database, a misconfigured upstream.
    Internal,
}

/// A message shown to people, in Chinese (the default) and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Simplified Chinese text.
    pub zh: Cow<'static, str>,
    /// English text.
    pub en: Cow<'static, str>,
}

impl Message {
    /// A message from its two translations.
    pub fn new(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// The text in the requested language.
    pub fn text(&self, language: Language) -> &str {
        match language {
            Language::Zh => &self.zh,
            Language::En => &self.en,
        }
    }
}

/// The languages messages come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// Simplified Chinese, the default.
    #[default]
    Zh,
    /// English, for requests that prefer it (`Accept-Language: en`).
    En,
}

impl std::str::FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "cn" => Ok(Self::Zh),
            "en" | "en-us" | "en-gb" => Ok(Self::En),
            other => Err(format!("unknown language `{other}` (use `zh` or `en`)")),
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of any Refbook operation.
///
/// The message is safe to show to the person who made the request; the optional source
/// holds the cause for logs only (it may name SQL or upstream details, never secrets).
#[derive(Debug, thiserror::Error)]
#[error("{}", message.en)]
pub struct Error {
    kind: ErrorKind,
    message: Message,
    field: Option<Cow<'static, str>>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Source>,
}

impl Error {
    /// An error of `kind` with a message in both languages.
    pub fn new(
        kind: ErrorKind,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            message: Message::new(zh, en),
            field: None,
            retry_after: None,
            source: None,
        }
    }

    /// Invalid input in the named request field.
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        zh: impl Into<Cow<'static, str>>,
        en: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(ErrorKind::InvalidInput, zh, en).with_field(field)
    }

    /// The one generic credential failure: it never says which part was wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorKind::Unauthorized,
            "身份验证失败，请重新登录",
            "Authentication failed; please sign in again",
        )
    }

    /// The one generic wrong-credentials failure of login forms.
    pub fn bad_credentials() -> Self {
        Self::new(
            ErrorKind::Unauthorized,
            "用户名或密码错误",
            "Incorrect username or password",
        )
    }

    /// The resource does not exist (or is not the caller's).
    pub fn not_found(what_zh: &str, what_en: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("{what_zh}不存在"),
            format!("{what_en} not found"),
        )
    }

    /// An unexpected failure; `source` goes to the log, a generic message to the caller.
    pub fn internal(source: impl Into<Source>) -> Self {
        Self::new(
            ErrorKind::Internal,
            "服务器内部错误",
            "Internal server error",
        )
        .with_source(source)
    }

    /// Names the request field the error is about.
    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Says how long the caller should wait before trying again.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches the underlying cause (for logs).
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for people.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The request field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// How long to wait before retrying, for rate limits.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The whole cause chain as one line, for logs.
    pub fn cause_chain(&self) -> String {
        let mut out = String::new();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
