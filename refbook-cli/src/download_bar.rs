//! The local model's first download, shown in the terminal: a progress bar on stderr,
//! or plain lines when stderr is not a terminal (piped runs, logs).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use refbook_core::llm::DownloadProgress;
use refbook_core::Language;

/// A progress bar for model downloads, worded in the user's language.
#[derive(Debug)]
pub struct DownloadBar {
    bar: Mutex<Option<ProgressBar>>,
    language: Language,
}

impl DownloadBar {
    /// A bar that speaks `language`.
    pub fn new(language: Language) -> Self {
        Self {
            bar: Mutex::default(),
            language,
        }
    }

    fn say(&self, zh: String, en: String) -> String {
        match self.language {
            Language::Zh => zh,
            Language::En => en,
        }
    }
}

impl DownloadProgress for DownloadBar {
    fn started(&self, name: &str, total: Option<u64>, done: u64) {
        if !std::io::stderr().is_terminal() {
            eprintln!(
                "{}",
                self.say(
                    format!("首次使用：正在下载本地模型 {name}…"),
                    format!("downloading the local model {name} (first run only)…"),
                )
            );
            return;
        }
        // A resume within the same run (the connection broke) moves the same bar back.
        if let Some(bar) = self.bar.lock().ok().as_ref().and_then(|slot| slot.as_ref()) {
            bar.set_position(done);
            return;
        }
        let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(self.say(format!("下载 {name}"), format!("downloading {name}")));
        bar.set_position(done);
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advanced(&self, done: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.set_position(done);
            }
        }
    }

    fn finished(&self, name: &str, ok: bool) {
        let bar = self.bar.lock().ok().and_then(|mut slot| slot.take());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if ok {
            eprintln!(
                "{}",
                self.say(
                    format!("已下载 {name}，以后直接从缓存读取"),
                    format!("downloaded {name}; it stays in the cache for next time"),
                )
            );
        }
    }
}
