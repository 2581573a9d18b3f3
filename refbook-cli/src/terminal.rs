//! How output looks: colour only on a terminal and without `NO_COLOR`; a spinner only on a
//! terminal.

use std::io::{IsTerminal, Write};

/// Output styling decided once per run.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Use ANSI colours and attributes.
    pub color: bool,
    /// stdin and stdout are a terminal (prompt, spinner).
    pub interactive: bool,
}

impl Style {
    /// Decides from the environment.
    pub fn detect() -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        Self {
            color: stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            interactive: stdout_tty && std::io::stdin().is_terminal(),
        }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Faint text (reasoning).
    pub fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }

    /// Bold text (titles).
    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }
}

/// Frames of the waiting spinner.
pub const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Writes and flushes stdout (streamed text must show at once).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
