//! The loop every background worker runs (books' indexing, books' guides): work while
//! there is some, else wait to be woken or for the next poll; it ends when the worker's
//! owner drops it. Workers hold what they work on by a lease in the database.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::Result;
use crate::timestamp::Timestamp;

/// A background worker.
#[async_trait]
pub(crate) trait Worker: Send + Sync + 'static {
    /// What it does, for the logs.
    const WORK: &'static str;
    /// How often the database is looked at for work.
    fn poll(&self) -> Duration;
    /// One pass over the work there is; whether anything was done.
    async fn run_once(&self) -> Result<bool>;
}

/// Runs `worker` in the background on the current runtime (if any) until it is dropped;
/// `wake` starts a pass at once.
pub(crate) fn spawn<W: Worker>(worker: &Arc<W>, wake: Arc<Notify>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(run(Arc::downgrade(worker), wake));
    }
}

async fn run<W: Worker>(worker: Weak<W>, wake: Arc<Notify>) {
    loop {
        let Some(work) = worker.upgrade() else {
            return;
        };
        let poll = work.poll();
        let worked = match work.run_once().await {
            Ok(worked) => worked,
            Err(err) => {
                tracing::warn!(error = %err, "{}", W::WORK);
                false
            }
        };
        drop(work);
        if !worked {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// When a lease of `lease` taken now ends.
pub(crate) fn lease_end(lease: Duration) -> Timestamp {
    Timestamp::from_millis(
        Timestamp::now()
            .millis()
            .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)),
    )
}
