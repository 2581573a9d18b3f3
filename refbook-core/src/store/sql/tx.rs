//! [`WriteTx`]: a write transaction whose connection never goes back to the pool while a
//! transaction may still be open on it.
//!
//! sqlx returns a connection to the pool after a failed transaction and trusts a queued
//! `ROLLBACK`. When the database itself already ended the transaction (SQLite rolls back by
//! itself on a full disk), sqlx's count of open transactions and the connection's real
//! state part ways, and later writes on that connection land in a transaction nobody
//! commits. A `WriteTx` that is dropped without a successful `COMMIT` therefore closes its
//! connection instead (closing rolls back whatever is open), so every failure — a full
//! disk, a lost server, a constraint — leaves only clean connections in the pool.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use sqlx::{Any, Executor};

use super::{Backend, SqlStore};
use crate::store::StoreError;

/// An open write transaction; derefs to its connection for queries.
pub(super) struct WriteTx {
    conn: PoolConnection<Any>,
    /// Until `COMMIT` succeeded: dropping closes the connection.
    open: bool,
    /// SQLite: this process's place at the head of its write queue (released after the
    /// connection is done).
    _writing: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl SqlStore {
    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite: it takes the write lock at
    /// once, so a transaction that reads before it writes never fails to upgrade).
    ///
    /// On SQLite, write transactions of this process first queue for the write lock (see
    /// [`Writer`](super::writer::Writer)).
    pub(super) async fn write(&self) -> Result<WriteTx, StoreError> {
        let writing = match &self.write_queue {
            Some(queue) => Some(super::writer::wait_to_write(queue).await),
            None => None,
        };
        let mut conn = self.pool.acquire().await?;
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        if let Err(err) = conn.execute(begin).await {
            conn.close_on_drop();
            return Err(err.into());
        }
        Ok(WriteTx {
            conn,
            open: true,
            _writing: writing,
        })
    }
}

impl WriteTx {
    /// Commits; on failure the connection is closed when `self` drops.
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        self.conn.execute("COMMIT").await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}
