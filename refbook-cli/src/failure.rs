//! How a command fails: one line saying what went wrong, one saying what to do, and a
//! non-zero exit code. Never a panic or a backtrace.

use std::process::ExitCode;

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

    /// A core error in the user's language, with a hint by kind.
    pub fn from_error(err: &Error, language: Language) -> Self {
        let hint = match err.kind() {
            ErrorKind::InvalidInput => None,
            ErrorKind::NotFound => Some("check the ISBN, or add the book with `refbook-cli books import FILE`"),
            ErrorKind::UpstreamUnavailable => Some("the book sources could not be reached; check the network or try again later"),
            ErrorKind::ModelUnavailable => Some("set REFBOOK_LLM_API_KEY (and REFBOOK_LLM_BASE_URL for servers other than DeepSeek)"),
            ErrorKind::Busy => Some("the server is answering as many questions as it can; try again shortly"),
            ErrorKind::Internal => Some("run again with REFBOOK_LOG=debug for details"),
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
