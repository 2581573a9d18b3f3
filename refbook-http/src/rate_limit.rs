//! Throttling per client IP and per account: login/register attempts, chat generations.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use refbook_core::{Error, ErrorKind};

/// Counts actions per minute per client IP and per account key (GCRA: a burst of `n`,
/// then one every `60/n` s).
pub struct RateLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimiter")
    }
}

impl RateLimiter {
    /// `per_minute` attempts per key; `None` when 0 (no limit).
    pub fn new(per_minute: u32) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Self {
            by_ip: governor::RateLimiter::keyed(quota),
            by_account: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one action from `ip` (for `account`, if known: a username or user id);
    /// `429` with `Retry-After` once either key is over its quota.
    pub fn check(&self, ip: IpAddr, account: Option<&str>) -> Result<(), Error> {
        let limited = |not_until: governor::NotUntil<_>| {
            Error::new(
                ErrorKind::RateLimited,
                "请求过于频繁，请稍后再试",
                "Too many requests; please try again later",
            )
            .with_retry_after(not_until.wait_time_from(self.clock.now()))
        };
        self.by_ip.check_key(&ip).map_err(limited)?;
        if let Some(key) = account
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
        {
            self.by_account.check_key(&key).map_err(limited)?;
        }
        Ok(())
    }

    /// Forgets keys whose quota has fully recovered (bounds memory; run periodically).
    pub fn retain_recent(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_username() {
        let limiter = RateLimiter::new(3).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            limiter.check(a, None).unwrap();
        }
        let err = limiter.check(a, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.retry_after().unwrap().as_secs() <= 20);
        // Another IP, but a username that is hammered from everywhere.
        for _ in 0..3 {
            limiter.check(b, Some("Alice")).unwrap_or(());
        }
        assert!(limiter
            .check("10.0.0.3".parse().unwrap(), Some("alice"))
            .is_err());
        assert!(RateLimiter::new(0).is_none());
    }
}
