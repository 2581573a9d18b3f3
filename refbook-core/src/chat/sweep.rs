//! The sweep that settles replies whose owner died (their lease ran out), on every
//! instance, at start and then periodically; and this process's owner id.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::store::Store;
use crate::timestamp::Timestamp;

/// A name for this process on the claims it holds: host-independent, unique per start.
pub(crate) fn owner_id() -> String {
    let nonce: u64 = rand::thread_rng().gen();
    format!("pid{}-{nonce:016x}", std::process::id())
}

/// Runs [`settle`] now and every `every` until dropped.
#[derive(Debug)]
pub(crate) struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    /// Starts sweeping `store`.
    pub(crate) fn start(store: Arc<dyn Store>, every: Duration) -> Self {
        let every = every.max(Duration::from_secs(1));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                settle(store.as_ref()).await;
            }
        });
        Self { task }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Settles the replies whose lease expired (logged; failures are retried next time).
pub(crate) async fn settle(store: &dyn Store) {
    match store.settle_expired_replies(Timestamp::now()).await {
        Ok(0) => {}
        Ok(settled) => tracing::info!(
            replies = settled,
            "kept replies whose owner stopped as partial (interrupted)"
        ),
        Err(err) => tracing::warn!(error = %err, "settling interrupted replies failed"),
    }
}
