//! Points in time as stored (Unix milliseconds) and as shown (ISO 8601 UTC).

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where a service reads the time: the system's clock, or one a test moves (expiry
/// tested without sleeping).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A point in time, UTC, with millisecond precision; stored as an integer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// From Unix milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// As Unix milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// As whole Unix seconds.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This time plus `seconds`.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    /// The UTC calendar day, as `YYYY-MM-DD` (the key of daily usage).
    pub fn utc_day(self) -> String {
        let dt = self.to_datetime();
        format!(
            "{:04}-{:02}-{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day()
        )
    }

    fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// ISO 8601 in UTC with whole seconds, as the contract shows: `2026-11-22T08:15:30Z`.
    pub fn to_iso8601(self) -> String {
        self.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_iso8601())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_contract_iso8601() {
        let t = Timestamp::from_millis(1_763_799_330_123);
        assert_eq!(t.to_iso8601(), "2025-11-22T08:15:30Z");
        assert_eq!(t.utc_day(), "2025-11-22");
        assert_eq!(t.plus_seconds(1).millis(), 1_763_799_331_123);
    }
}
