//! Configuration, logging and the Refbook instance for a CLI run.

use std::io::IsTerminal;
use std::path::Path;

use refbook_core::{Config, ErrorKind, Language, Refbook};

use crate::failure::Failure;

/// The CLI's database when none is configured: `refbook.db` in the user's data folder.
fn default_database_url() -> String {
    let dir = dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("refbook");
    format!("sqlite://{}", dir.join("refbook.db").display())
}

/// The server's configuration layers over the CLI's defaults.
pub fn config(file: Option<&Path>, database_url: Option<&str>) -> Result<Config, Failure> {
    let base = Config {
        database_url: default_database_url(),
        ..Config::default()
    };
    let overrides: Vec<(&str, String)> = database_url
        .map(|url| ("database_url", url.to_owned()))
        .into_iter()
        .collect();
    Config::load_over(base, file, std::env::vars(), &overrides)
        .map_err(|e| Failure::plain(e.to_string()).hint("fix the setting named above"))
}

/// Log lines only when `REFBOOK_LOG` asks for them, and then on stderr. By default none:
/// the CLI reports every failure itself (an `error:` line and a `hint:`), and a log line
/// would land in the middle of the conversation on the terminal.
pub fn logging(config: &Config) {
    let filter = if std::env::var_os("REFBOOK_LOG").is_some() {
        config.log.clone()
    } else {
        "off".to_owned()
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// `REFBOOK_LANGUAGE` when set, else the terminal's locale (`zh*` → Chinese, else English).
pub fn language(config: &Config) -> Language {
    if std::env::var_os("REFBOOK_LANGUAGE").is_some() {
        return config.language;
    }
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_default();
    if locale.to_ascii_lowercase().starts_with("zh") {
        Language::Zh
    } else {
        Language::En
    }
}

/// Builds Refbook (connecting to and migrating the database).
pub async fn refbook(config: Config) -> Result<Refbook, Failure> {
    let url = config.database_url.clone();
    let language = language(&config);
    Refbook::builder(config)
        .download_progress(std::sync::Arc::new(crate::download_bar::DownloadBar::new(
            language,
        )))
        .build()
        .await
        .map_err(|e| match e.kind() {
            // A setting the core refused (the local model's reference, …): say which.
            ErrorKind::InvalidInput => Failure::plain(e.message().text(language).to_owned())
                .hint("fix the setting named above"),
            _ => Failure::plain(format!(
                "cannot open the database {url}: {}",
                e.cause_chain()
            ))
            .hint("check REFBOOK_DATABASE_URL (or --database-url)"),
        })
}
