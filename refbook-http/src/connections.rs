//! The front door's limits on connections: the open-file limit raised at start, a cap on
//! open connections (over it: a quick `503` and close), an idle limit for connections that
//! send nothing, and an accept loop that backs off — without flooding the log — when the
//! process runs out of descriptors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept free for the database, upstream calls and files.
const RESERVED_FDS: u64 = 128;
/// The most connections the automatic cap allows.
const AUTO_MAX: u64 = 10_000;
/// What a connection over the cap is told before it is closed.
const BUSY_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 90\r\n\r\n\
{\"code\":\"SERVER_BUSY\",\"message\":\"Too many connections are open; please try again shortly\"}";

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The connection cap: `configured`, or (0) what the open-file limit leaves room for.
pub fn connection_cap(configured: usize, open_files: u64) -> usize {
    if configured > 0 {
        return configured;
    }
    let room = open_files.saturating_sub(RESERVED_FDS).clamp(16, AUTO_MAX);
    usize::try_from(room).unwrap_or(16)
}

/// Counts open connections against the cap.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Semaphore>);

impl Slots {
    /// Room for `max` connections.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }

    /// A slot for a new connection, held until it closes; `None` at the cap.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// Answers a connection over the cap with a `503` and closes it; what the client sent is
/// read and dropped for a moment, so closing does not reset the connection under it.
pub async fn shed(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY_RESPONSE).await;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Waits up to `idle` for a new connection's first byte; `false` when it sent nothing
/// (or closed), so it can be dropped.
pub async fn first_byte(stream: &TcpStream, idle: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(idle, stream.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Backs off after failed accepts (out of descriptors, say), logging one line per second
/// at most with the count of failures it stands for.
#[derive(Debug)]
pub struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    last_log: Option<Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            pause: Duration::from_millis(5),
            failures: 0,
            last_log: None,
        }
    }
}

impl AcceptBackoff {
    /// A failed accept: logs (rate-limited) and waits, longer each time up to a second.
    pub async fn failed(&mut self, err: &std::io::Error) {
        self.failures += 1;
        if self
            .last_log
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(error = %err, failures = self.failures, "accept failed; backing off");
            self.last_log = Some(Instant::now());
            self.failures = 0;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(1));
    }

    /// A successful accept: back to a short pause.
    pub fn succeeded(&mut self) {
        self.pause = Duration::from_millis(5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_leaves_room_for_other_files() {
        assert_eq!(connection_cap(0, 1024), 896);
        assert_eq!(connection_cap(0, 1_048_576), 10_000);
        assert_eq!(connection_cap(0, 100), 16);
        assert_eq!(connection_cap(50, 1024), 50);
        let body_at = BUSY_RESPONSE
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        assert_eq!(BUSY_RESPONSE.len() - body_at, 90, "content-length is right");
    }
}
