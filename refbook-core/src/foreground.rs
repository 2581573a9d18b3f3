//! [`Foreground`]: whether a reader's answer is being computed on this machine's CPU right
//! now (the local model answering, or a reader's question waiting for it), so that
//! background work on the same cores — embedding a book's text — steps aside between its
//! batches. The local model announces each reader's answer with [`Foreground::enter`]; the
//! background work waits with [`Foreground::idle`]. A remote model's answers are not
//! announced: they cost this machine little, and pausing for them would starve indexing
//! on a busy server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Readers' answers in progress on this machine's CPU.
#[derive(Debug, Default)]
pub struct Foreground {
    answers: AtomicUsize,
    /// Woken when the last answer ends.
    quiet: Notify,
}

/// One reader's answer, counted until it is dropped.
#[derive(Debug)]
pub struct ForegroundAnswer {
    foreground: Arc<Foreground>,
}

impl Foreground {
    /// A foreground with no answer in progress.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a reader's answer until the returned value is dropped.
    pub fn enter(self: &Arc<Self>) -> ForegroundAnswer {
        self.answers.fetch_add(1, Ordering::SeqCst);
        ForegroundAnswer {
            foreground: self.clone(),
        }
    }

    /// Whether a reader's answer is in progress.
    pub fn busy(&self) -> bool {
        self.answers.load(Ordering::SeqCst) > 0
    }

    /// Waits until no reader's answer is in progress, at most `at_most` (background work
    /// must still move on a machine that never rests); whether it had to wait at all.
    pub async fn idle(&self, at_most: Duration) -> bool {
        if !self.busy() {
            return false;
        }
        let _ = tokio::time::timeout(at_most, async {
            loop {
                let quiet = self.quiet.notified();
                tokio::pin!(quiet);
                // Registered before looking, so an answer ending in between still wakes it.
                quiet.as_mut().enable();
                if !self.busy() {
                    return;
                }
                quiet.await;
            }
        })
        .await;
        true
    }
}

impl Drop for ForegroundAnswer {
    fn drop(&mut self) {
        if self.foreground.answers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.foreground.quiet.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_answer_and_no_longer_than_asked() {
        let foreground = Foreground::new();
        assert!(
            !foreground.idle(Duration::from_secs(5)).await,
            "nothing to wait for"
        );
        let first = foreground.enter();
        let second = foreground.enter();
        let waiting = {
            let foreground = foreground.clone();
            tokio::spawn(async move { foreground.idle(Duration::from_secs(30)).await })
        };
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one answer is still in progress");
        drop(second);
        assert!(waiting.await.unwrap(), "it waited, and was woken");
        assert!(!foreground.busy());
        let _held = foreground.enter();
        let started = std::time::Instant::now();
        assert!(foreground.idle(Duration::from_millis(100)).await);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
