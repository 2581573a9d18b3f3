//! How a command fails: one line saying what went wrong, one saying what to do, and a
//! non-zero exit code. Never a panic or a backtrace.

use std::process::ExitCode;

use refbook_core::llm::ModelError;
use refbook_core::{Error, ErrorKind, Language};

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
}

impl Failure {
    /// A failure with just a message.
    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what the user can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A core error in the user's language, with a hint that matches its cause.
    pub fn from_error(err: &Error, language: Language) -> Self {
        let hint = match err.kind() {
            ErrorKind::InvalidInput | ErrorKind::ModelUnavailable => model_hint(err),
            ErrorKind::NotFound => {
                Some("check the ISBN, or add the book with `refbook-cli books import FILE`".into())
            }
            ErrorKind::UpstreamUnavailable => Some(
                "the book sources could not be reached; check the network or try again later"
                    .into(),
            ),
            ErrorKind::Busy => model_hint(err).or_else(|| {
                Some(
                    "the server is answering as many questions as it can; try again shortly".into(),
                )
            }),
            ErrorKind::Internal => Some("run again with REFBOOK_LOG=debug for details".into()),
            _ => None,
        };
        let mut message = err.message().text(language).to_owned();
        if err.kind() == ErrorKind::Internal {
            let cause = err.cause_chain();
            if !cause.is_empty() {
                message = format!("{message}: {cause}");
            }
        }
        let failure = Self::plain(message);
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }

    /// Prints the failure to stderr.
    pub fn print(&self) {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
    }

    /// Prints the failure and gives the exit code.
    pub fn report(self) -> ExitCode {
        self.print();
        ExitCode::FAILURE
    }
}

/// What to do about a model failure, by its cause (`None` when the error is not one).
fn model_hint(err: &Error) -> Option<String> {
    let cause = std::error::Error::source(err)?.downcast_ref::<ModelError>()?;
    Some(match cause {
        // The local model's own account of what is missing and what to do.
        ModelError::Unavailable(detail) => return Some(detail.clone()),
        ModelError::NotConfigured => {
            "set REFBOOK_LLM_API_KEY (and REFBOOK_LLM_BASE_URL for servers other than DeepSeek), or REFBOOK_LOCAL_MODEL to a GGUF file to answer on this machine"
        }
        ModelError::Unauthorized => "the model refused the key: check REFBOOK_LLM_API_KEY",
        ModelError::InsufficientBalance => "the model account has no balance left: top it up",
        ModelError::RateLimited => "the model is limiting requests: wait a moment and ask again",
        ModelError::Busy(_) => {
            "the local model is busy with other questions: ask again shortly, or raise REFBOOK_LOCAL_QUEUE_TIMEOUT_SECS"
        }
        ModelError::Timeout(_) => {
            "the model did not answer in time: ask again, or raise REFBOOK_LLM_FIRST_DATA_TIMEOUT_SECS"
        }
        ModelError::Network(_) => "the model could not be reached: check REFBOOK_LLM_BASE_URL and the network",
        ModelError::ContextExceeded => {
            "shorten the question, or set REFBOOK_LLM_CONTEXT_TOKENS to the model's context"
        }
        ModelError::Status { status, .. } if *status >= 500 => {
            "the model's server failed: ask again later"
        }
        ModelError::Status { .. } => "the model refused the request: check REFBOOK_LLM_MODEL and REFBOOK_LLM_BASE_URL",
        ModelError::Stream(_) | ModelError::Corrupt => "the model's answer broke off: ask again",
    }
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint_of(cause: ModelError) -> String {
        Failure::from_error(&Error::from(cause), Language::En)
            .hint
            .unwrap_or_default()
    }

    #[test]
    fn model_hints_match_the_cause() {
        assert!(hint_of(ModelError::NotConfigured).contains("REFBOOK_LLM_API_KEY"));
        assert!(hint_of(ModelError::Unauthorized).contains("refused the key"));
        assert!(hint_of(ModelError::RateLimited).contains("wait"));
        assert!(hint_of(ModelError::Busy(30)).contains("REFBOOK_LOCAL_QUEUE_TIMEOUT_SECS"));
        assert!(hint_of(ModelError::ContextExceeded).contains("REFBOOK_LLM_CONTEXT_TOKENS"));
        assert!(hint_of(ModelError::Timeout("idle")).contains("in time"));
        let server = hint_of(ModelError::Status {
            status: 500,
            detail: String::new(),
        });
        assert!(
            server.contains("later") && !server.contains("API_KEY"),
            "{server}"
        );
        // Only a missing key points at the key.
        for cause in [
            ModelError::InsufficientBalance,
            ModelError::Network("refused".into()),
            ModelError::Corrupt,
        ] {
            assert!(!hint_of(cause).contains("set REFBOOK_LLM_API_KEY"));
        }
    }
}
