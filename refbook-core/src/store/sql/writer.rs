//! [`Writer`]: how this process writes to SQLite under load.
//!
//! SQLite has one writer at a time, so every write transaction holds the database's
//! write lock from `BEGIN IMMEDIATE` to `COMMIT`, and each statement in between is a
//! round trip to the connection's own thread. Run on the request runtime, a transaction's
//! next step waits behind every other ready task (hundreds of streaming replies), and the
//! lock is held all that time. So the hot write transactions run on a thread of their own
//! (a small runtime that does nothing else) and queue for their turn in order, instead of
//! finding the lock taken and sleeping in SQLite's busy handler.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use super::final_saves::{FinalQueue, OwnedFinal};
use super::SqlStore;
use crate::store::StoreError;

/// One write transaction of this process at a time, in arrival order.
pub(super) type Turn = Arc<Mutex<()>>;

/// Waits for this process's turn to write.
pub(super) async fn take_turn(turn: &Turn) -> OwnedMutexGuard<()> {
    turn.clone().lock_owned().await
}

/// The write path of one SQLite store; shared by its clones, stopped with the last.
#[derive(Debug)]
pub(super) struct Writer {
    /// The writer thread's runtime.
    runtime: tokio::runtime::Handle,
    /// Final saves, written together.
    finals: FinalQueue,
    /// Dropped with the last store clone: the thread ends.
    _stop: oneshot::Sender<()>,
}

impl Writer {
    /// Starts the writer thread; its loops write through `store`, a handle to the same
    /// database and turn that does not own this writer.
    pub(super) fn start(store: SqlStore) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("refbook-sqlite-writer".to_owned())
            .spawn(move || {
                // Runs until the store is gone; its tasks end with the runtime.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let finals = FinalQueue::start(&handle, store);
        Ok(Self {
            runtime: handle,
            finals,
            _stop: stop,
        })
    }

    /// Saves a reply's final state with whatever others are waiting (see
    /// [`final_saves`](super::final_saves)).
    pub(super) async fn save_final(&self, reply: OwnedFinal) -> Result<(), StoreError> {
        self.finals.save(reply).await
    }

    /// Runs `work` (a write transaction) on the writer thread. Dropping the returned
    /// future cancels the work as dropping it in place would (its transaction rolls back).
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = AbortOnDrop(self.runtime.spawn(work));
        match (&mut task.0).await {
            Ok(result) => result,
            Err(err) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(
                format!("the writer thread dropped a write: {err}"),
            )))),
        }
    }
}

/// A spawned task that is aborted if its awaiting future goes away first.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
