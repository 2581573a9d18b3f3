//! [`DownloadProgress`]: how a model download reports itself — a progress bar in a
//! terminal, [`LogProgress`] lines in a server's log.

use std::sync::atomic::{AtomicU64, Ordering};

/// Receives the progress of a model file's download.
pub trait DownloadProgress: Send + Sync {
    /// The download of `name` begins, or resumes with `done` bytes already here; `total`
    /// when the server said.
    fn started(&self, name: &str, total: Option<u64>, done: u64);
    /// `done` bytes of the file are here now.
    fn advanced(&self, done: u64);
    /// The download of `name` ended: verified and in place (`ok`), or failed.
    fn finished(&self, name: &str, ok: bool);
}

/// Progress as log lines (`tracing` at info): one at the start, one per tenth of the file,
/// one at the end.
#[derive(Debug, Default)]
pub struct LogProgress {
    total: AtomicU64,
    /// The last tenth reported.
    tenth: AtomicU64,
}

const MB: f64 = 1_048_576.0;

impl DownloadProgress for LogProgress {
    fn started(&self, name: &str, total: Option<u64>, done: u64) {
        let total = total.unwrap_or(0);
        self.total.store(total, Ordering::Relaxed);
        self.tenth.store(
            (done * 10).checked_div(total).unwrap_or(0),
            Ordering::Relaxed,
        );
        #[allow(clippy::cast_precision_loss)]
        let (total_mb, done_mb) = (total as f64 / MB, done as f64 / MB);
        if done > 0 {
            tracing::info!(
                "downloading the local model {name}: resuming at {done_mb:.0} of {total_mb:.0} MB"
            );
        } else {
            tracing::info!("downloading the local model {name} ({total_mb:.0} MB), once");
        }
    }

    fn advanced(&self, done: u64) {
        let total = self.total.load(Ordering::Relaxed);
        let Some(tenth) = (done * 10).checked_div(total) else {
            return;
        };
        if tenth > self.tenth.swap(tenth, Ordering::Relaxed) {
            #[allow(clippy::cast_precision_loss)]
            let (done_mb, total_mb) = (done as f64 / MB, total as f64 / MB);
            tracing::info!(
                "local model download: {}% ({done_mb:.0} of {total_mb:.0} MB)",
                tenth * 10
            );
        }
    }

    fn finished(&self, name: &str, ok: bool) {
        if ok {
            tracing::info!("local model {name} downloaded and verified");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_are_reported_once_each() {
        let progress = LogProgress::default();
        progress.started("m.gguf", Some(1000), 250);
        assert_eq!(progress.tenth.load(Ordering::Relaxed), 2);
        progress.advanced(290);
        assert_eq!(progress.tenth.load(Ordering::Relaxed), 2);
        progress.advanced(1000);
        assert_eq!(progress.tenth.load(Ordering::Relaxed), 10);
        // No total known: nothing to divide, nothing reported.
        progress.started("m.gguf", None, 0);
        progress.advanced(5);
        assert_eq!(progress.tenth.load(Ordering::Relaxed), 0);
    }
}
