//! Login and registration throttling: attempts per minute per client IP and per username.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use refbook_core::{Error, ErrorKind};

/// Throttles credential attempts (GCRA: a burst of `n`, then one every `60/n` s).
pub struct LoginLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_username: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginLimiter")
    }
}

impl LoginLimiter {
    /// `per_minute` attempts per key; `None` when 0 (no limit).
    pub fn new(per_minute: u32) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Self {
            by_ip: RateLimiter::keyed(quota),
            by_username: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one attempt from `ip` (for `username`, if known); `429` with `Retry-After`
    /// once either key is over its quota.
    pub fn check(&self, ip: IpAddr, username: Option<&str>) -> Result<(), Error> {
        let limited = |not_until: governor::NotUntil<_>| {
            Error::new(
                ErrorKind::RateLimited,
                "尝试次数过多，请稍后再试",
                "Too many attempts; please try again later",
            )
            .with_retry_after(not_until.wait_time_from(self.clock.now()))
        };
        self.by_ip.check_key(&ip).map_err(limited)?;
        if let Some(name) = username
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
        {
            self.by_username.check_key(&name).map_err(limited)?;
        }
        Ok(())
    }

    /// Forgets keys whose quota has fully recovered (bounds memory; run periodically).
    pub fn retain_recent(&self) {
        self.by_ip.retain_recent();
        self.by_username.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_username() {
        let limiter = LoginLimiter::new(3).unwrap();
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
        assert!(LoginLimiter::new(0).is_none());
    }
}
