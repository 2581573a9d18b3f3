//! Throttling per client IP and per account (login/register attempts, chat generations),
//! for front ends: [`Refbook::rate_limiter`](crate::Refbook::rate_limiter) hands one out,
//! shared through Redis when the instances share one. With Redis the counts are shared
//! by every instance; while Redis does not answer, each instance counts alone (the cluster
//! says so once in the log).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::cluster::{Cluster, RedisError};
use crate::error::{Error, ErrorKind};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Counts actions per minute per client IP and per account key (GCRA: a burst of `n`,
/// then one every `60/n` s).
pub struct RateLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    per_minute: u32,
    /// Shared counts: the cluster and this limiter's name in its keys.
    shared: Option<(Cluster, &'static str)>,
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
            per_minute,
            shared: None,
        })
    }

    /// Counts in `cluster`'s Redis, under keys named `name`, so that every instance
    /// draws on one allowance.
    #[must_use]
    pub(crate) fn shared(mut self, cluster: Cluster, name: &'static str) -> Self {
        self.shared = Some((cluster, name));
        self
    }

    /// Counts one action from `ip` (for `account`, if known: a username or user id);
    /// `429` with `Retry-After` once either key is over its quota.
    ///
    /// # Errors
    ///
    /// `RateLimited` (with the wait) once either key is over its quota.
    pub async fn check(&self, ip: IpAddr, account: Option<&str>) -> Result<(), Error> {
        let account = account
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty());
        if let Some((cluster, name)) = &self.shared {
            // While Redis does not answer, count here (the cluster logs the outage).
            if let Ok(wait) = self
                .check_shared(cluster, name, ip, account.as_deref())
                .await
            {
                return wait.map_or(Ok(()), |wait| Err(limited(wait)));
            }
        }
        let local =
            |not_until: governor::NotUntil<_>| limited(not_until.wait_time_from(self.clock.now()));
        self.by_ip.check_key(&ip).map_err(local)?;
        if let Some(key) = account {
            self.by_account.check_key(&key).map_err(local)?;
        }
        Ok(())
    }

    /// The shared count: `Some(wait)` when over the allowance.
    async fn check_shared(
        &self,
        cluster: &Cluster,
        name: &str,
        ip: IpAddr,
        account: Option<&str>,
    ) -> Result<Option<Duration>, RedisError> {
        if let Some(wait) = cluster
            .rate_check(&format!("{name}:ip:{ip}"), self.per_minute)
            .await?
        {
            return Ok(Some(wait));
        }
        match account {
            Some(account) => {
                cluster
                    .rate_check(&format!("{name}:account:{account}"), self.per_minute)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Forgets keys whose quota has fully recovered (bounds memory; run periodically).
    pub fn retain_recent(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
    }
}

/// `RATE_LIMIT` with how long to wait.
fn limited(wait: Duration) -> Error {
    Error::new(
        ErrorKind::RateLimited,
        "请求过于频繁，请稍后再试",
        "Too many requests; please try again later",
    )
    .with_retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_per_ip_and_per_username() {
        let limiter = RateLimiter::new(3).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            limiter.check(a, None).await.unwrap();
        }
        let err = limiter.check(a, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(err.retry_after().unwrap().as_secs() <= 20);
        // Another IP, but a username that is hammered from everywhere.
        for _ in 0..3 {
            limiter.check(b, Some("Alice")).await.unwrap_or(());
        }
        assert!(limiter
            .check("10.0.0.3".parse().unwrap(), Some("alice"))
            .await
            .is_err());
        assert!(RateLimiter::new(0).is_none());
    }
}
