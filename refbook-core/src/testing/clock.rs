//! [`ShiftedClock`]: the system's time moved ahead by hand, so tests of expiry need not
//! sleep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::timestamp::{Clock, Timestamp};

/// The system's clock plus an offset the test moves forward; clones share the offset.
#[derive(Debug, Default, Clone)]
pub struct ShiftedClock {
    ahead_ms: Arc<AtomicI64>,
}

impl ShiftedClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(
            Timestamp::now()
                .millis()
                .saturating_add(self.ahead_ms.load(Ordering::SeqCst)),
        )
    }
}
