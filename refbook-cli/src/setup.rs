//! Configuration, logging and the Refbook instance for a CLI run.

use std::io::IsTerminal;
use std::path::Path;

use refbook_core::config::Layers;
use refbook_core::{Config, ErrorKind, Language, Refbook};

use crate::failure::Failure;

/// The CLI's database when none is configured: `refbook.db` in the user's data folder.
fn default_database_url() -> String {
    let dir = dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("refbook");
    format!("sqlite://{}", dir.join("refbook.db").display())
}

refbook_core::settings_group! {
    /// What only the CLI reads.
    pub struct CliSettings {
        /// Log filter; the CLI writes log lines (on stderr) only when `REFBOOK_LOG` is set.
        log ("log"): String = "info".to_owned();
    }
}

/// The CLI's configuration: the core's settings, its own, and the file's keys it does not
/// use (a server's, such as `bind`, or misspelt).
#[derive(Debug)]
pub struct CliConfig {
    /// The core's settings.
    pub core: Config,
    /// The CLI's own.
    pub cli: CliSettings,
    /// Keys of the file that neither reads.
    pub unused: Vec<String>,
}

/// The server's configuration layers (file, `REFBOOK_*`, flags) over the CLI's defaults.
pub fn config(file: Option<&Path>, database_url: Option<&str>) -> Result<CliConfig, Failure> {
    let overrides: Vec<(&str, String)> = database_url
        .map(|url| ("database_url", url.to_owned()))
        .into_iter()
        .collect();
    let mut core = Config::default();
    core.database.url = default_database_url();
    let mut cli = CliSettings::default();
    let unused = Layers::read(file, std::env::vars(), &overrides)
        .and_then(|layers| layers.fill_ignoring_unknown(&mut [&mut core, &mut cli]))
        .and_then(|unused| core.validate().map(|()| unused))
        .map_err(|e| Failure::plain(e.to_string()).hint("fix the setting named above"))?;
    Ok(CliConfig { core, cli, unused })
}

/// A line on stderr naming the file's settings the CLI does not use (once per run; the
/// file may be a server's).
pub fn note_unused(config: &CliConfig, language: Language) {
    if config.unused.is_empty() {
        return;
    }
    let keys = config.unused.join(", ");
    match language {
        Language::Zh => eprintln!("提示：配置文件中的 {keys} 不是 refbook-cli 的设置（服务器的设置或拼写错误），已忽略"),
        Language::En => eprintln!(
            "note: {keys} in the configuration file is not a refbook-cli setting (a server's, or misspelt); ignored"
        ),
    }
}

/// Log lines only when `REFBOOK_LOG` asks for them, and then on stderr. By default none:
/// the CLI reports every failure itself (an `error:` line and a `hint:`), and a log line
/// would land in the middle of the conversation on the terminal.
pub fn logging(config: &CliSettings) {
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
        return config.general.language;
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
    let url = config.database.url.clone();
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
