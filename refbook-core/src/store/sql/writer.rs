//! [`Writer`]: how this process writes to SQLite under load.
//!
//! SQLite has one writer at a time: every write transaction holds the database's write
//! lock from `BEGIN IMMEDIATE` to `COMMIT`, and each statement in between is a round trip
//! to the connection's own thread. So:
//! - write transactions of this process queue ([`WriteQueue`]) instead of
//!   finding the lock taken and sleeping in SQLite's busy handler (1, 2, 5, 10, … ms,
//!   never woken when the lock frees);
//! - the two hot writes of every reply — its claim and its final save — wait in a queue
//!   and are written many at a time, one transaction per batch, on a thread of their own
//!   that does nothing else ("group commit"): a handful of statements for a whole batch
//!   instead of a handful per reply.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, OwnedMutexGuard};

use super::batch::{BatchWrites, ClaimOutcome, OwnedFinal};
use crate::store::{ReplyClaim, StoreError};
use crate::timestamp::Timestamp;

/// The most writes of one kind done in one transaction.
const MAX_BATCH: usize = 64;

/// One write transaction of this process at a time, in arrival order.
pub(super) type WriteQueue = Arc<Mutex<()>>;

/// Waits until this process's earlier write transactions are done.
pub(super) async fn wait_to_write(queue: &WriteQueue) -> OwnedMutexGuard<()> {
    queue.clone().lock_owned().await
}

/// The batched write path of one SQLite store; shared by its clones, stopped with the
/// last.
#[derive(Debug)]
pub(super) struct Writer {
    /// Reply claims, written together.
    claims: BatchQueue<ReplyClaim, Result<ClaimOutcome, String>>,
    /// Final saves, written together.
    finals: BatchQueue<OwnedFinal, Result<(), String>>,
    /// Dropped with the last store clone: the thread ends.
    _stop: oneshot::Sender<()>,
}

impl Writer {
    /// Starts the writer thread; its loops write through `store`, a handle to the same
    /// database and write queue that does not own this writer.
    pub(super) fn start(store: impl BatchWrites) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("refbook-sqlite-writer".to_owned())
            .spawn(move || {
                // Runs until the store is gone; its loops end with the runtime.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let (claiming, abandoning) = (store.clone(), store.clone());
        let claims = BatchQueue::start(
            &handle,
            move |batch: Vec<ReplyClaim>| {
                let store = claiming.clone();
                async move {
                    match store.write_claims(&batch, Timestamp::now()).await {
                        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                        Err(err) => vec![Err(describe(err)); batch.len()],
                    }
                }
            },
            // A claim made for a caller that went away meanwhile (the client hung up)
            // is undone at once, as the transaction it waited for would have rolled
            // back, rather than holding the conversation until its lease runs out.
            move |lost: Result<ClaimOutcome, String>| {
                let store = abandoning.clone();
                async move {
                    if let Ok(ClaimOutcome::Claimed(claimed)) = lost {
                        let question = claimed.question.as_ref().map(|q| q.id);
                        if let Err(err) = store.undo_claim(claimed.reply.id, question).await {
                            tracing::warn!(error = %err, "undoing an unused claim failed; its lease will settle it");
                        }
                    }
                }
            },
        );
        let finals = BatchQueue::start(
            &handle,
            move |batch: Vec<OwnedFinal>| {
                let store = store.clone();
                async move {
                    let outcome = store
                        .write_finals(&batch, Timestamp::now())
                        .await
                        .map_err(describe);
                    vec![outcome; batch.len()]
                }
            },
            // A final save stands whether or not its caller still waits.
            |_| async {},
        );
        Ok(Self {
            claims,
            finals,
            _stop: stop,
        })
    }

    /// Claims a reply together with whatever other claims are waiting.
    pub(super) async fn claim(&self, claim: ReplyClaim) -> Result<ClaimOutcome, StoreError> {
        self.claims.submit(claim).await?.map_err(failed)
    }

    /// Saves a reply's final state together with whatever others are waiting.
    pub(super) async fn save_final(&self, reply: OwnedFinal) -> Result<(), StoreError> {
        self.finals.submit(reply).await?.map_err(failed)
    }
}

/// A failed batch, as one line for each of its callers.
fn describe(err: StoreError) -> String {
    crate::error::Error::from(err).cause_chain()
}

/// A batch's failure as its callers see it.
fn failed(cause: String) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(cause)))
}

/// Writes waiting to be done together on the writer thread, each with who to tell.
/// Callers are answered only after their batch's transaction ended; the outcome of one
/// that went away meanwhile goes to the queue's `lost` handler.
#[derive(Debug)]
struct BatchQueue<I, O>(mpsc::UnboundedSender<(I, oneshot::Sender<O>)>);

impl<I: Send + 'static, O: Send + 'static> BatchQueue<I, O> {
    /// Starts the loop that takes every waiting item (up to [`MAX_BATCH`]) and writes
    /// them with `write`, which answers one outcome per item, in order; outcomes nobody
    /// waits for any more go to `lost`.
    fn start<F, Fut, L, LFut>(runtime: &tokio::runtime::Handle, write: F, lost: L) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
        L: Fn(O) -> LFut + Send + 'static,
        LFut: Future<Output = ()> + Send,
    {
        let (sender, mut queue) = mpsc::unbounded_channel::<(I, oneshot::Sender<O>)>();
        runtime.spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let (items, waiting): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                for (outcome, waiter) in write(items).await.into_iter().zip(waiting) {
                    if let Err(unheard) = waiter.send(outcome) {
                        lost(unheard).await;
                    }
                }
            }
        });
        Self(sender)
    }

    /// Queues `item` and waits for its outcome.
    async fn submit(&self, item: I) -> Result<O, StoreError> {
        let (tell, told) = oneshot::channel();
        let stopped = || failed("the writer thread stopped".to_owned());
        self.0.send((item, tell)).map_err(|_| stopped())?;
        told.await.map_err(|_| stopped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn outcomes_of_callers_that_went_away_go_to_lost() {
        let (seen, mut lost_ones) = mpsc::unbounded_channel::<u32>();
        let queue = BatchQueue::start(
            &tokio::runtime::Handle::current(),
            |batch: Vec<u32>| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                batch.into_iter().map(|n| n * 10).collect()
            },
            move |unheard: u32| {
                let seen = seen.clone();
                async move {
                    let _ = seen.send(unheard);
                }
            },
        );
        // One caller waits for its answer; another gives up before the write ends.
        let impatient = tokio::time::timeout(Duration::from_millis(5), queue.submit(1)).await;
        assert!(impatient.is_err());
        assert_eq!(queue.submit(2).await.unwrap(), 20);
        assert_eq!(lost_ones.recv().await, Some(10));
        assert!(lost_ones.try_recv().is_err(), "a heard outcome is not lost");
    }
}
