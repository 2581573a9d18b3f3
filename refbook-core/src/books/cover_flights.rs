//! [`CoverFlights`]: how cover fetches are rationed. The cover route needs no token, so
//! anyone can ask for a failing cover again and again: one fetch per URL runs at a time
//! (the others wait for it and then read the stored image), a few fetches run at once in
//! all, and a failure is remembered for a short time instead of being fetched again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind};

/// How long a failed cover fetch is remembered.
const REMEMBER_FAILURE: Duration = Duration::from_secs(60);
/// Cover fetches running at once, all covers together.
const MAX_OUTBOUND: usize = 8;
/// The most failures remembered (oldest forgotten first when full).
const MAX_FAILURES: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-URL fetch slots, an overall cap and remembered failures.
#[derive(Debug)]
pub(crate) struct CoverFlights {
    per_url: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    failures: Mutex<HashMap<String, (Instant, ErrorKind)>>,
    outbound: Arc<Semaphore>,
    /// How long to wait for an outbound slot.
    wait: Duration,
}

/// A caller's slot to fetch one URL; the next caller for it waits until this drops.
pub(crate) struct FetchSlot<'a> {
    flights: &'a CoverFlights,
    url: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for FetchSlot<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut per_url = lock(&self.flights.per_url);
        // The map holds one reference; nobody else waiting: forget the URL.
        if per_url
            .get(&self.url)
            .is_some_and(|t| Arc::strong_count(t) == 1)
        {
            per_url.remove(&self.url);
        }
    }
}

impl CoverFlights {
    /// Rationing with outbound slots waited for at most `wait`.
    pub(crate) fn new(wait: Duration) -> Self {
        Self {
            per_url: Mutex::default(),
            failures: Mutex::default(),
            outbound: Arc::new(Semaphore::new(MAX_OUTBOUND)),
            wait,
        }
    }

    /// Waits for this caller's slot to fetch `url`.
    pub(crate) async fn fetch_slot(&self, url: &str) -> FetchSlot<'_> {
        let mutex = lock(&self.per_url)
            .entry(url.to_owned())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        FetchSlot {
            flights: self,
            url: url.to_owned(),
            guard: Some(guard),
        }
    }

    /// The error of a recent failed fetch of `url`, if any.
    pub(crate) fn recent_failure(&self, url: &str) -> Option<Error> {
        let mut failures = lock(&self.failures);
        match failures.get(url) {
            Some((until, kind)) if *until > Instant::now() => Some(remembered(*kind)),
            Some(_) => {
                failures.remove(url);
                None
            }
            None => None,
        }
    }

    /// Remembers that fetching `url` failed with `kind`.
    pub(crate) fn failed(&self, url: &str, kind: ErrorKind) {
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_FAILURES {
            let now = Instant::now();
            failures.retain(|_, (until, _)| *until > now);
            if failures.len() >= MAX_FAILURES {
                failures.clear();
            }
        }
        failures.insert(url.to_owned(), (Instant::now() + REMEMBER_FAILURE, kind));
    }

    /// An outbound slot, or "unavailable" when none frees up in time.
    pub(crate) async fn outbound(&self) -> Result<OwnedSemaphorePermit, Error> {
        match tokio::time::timeout(self.wait, self.outbound.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(remembered(ErrorKind::UpstreamUnavailable)),
        }
    }
}

/// The error a remembered failure answers with.
fn remembered(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::UpstreamUnavailable => Error::new(
            ErrorKind::UpstreamUnavailable,
            "封面暂时无法获取",
            "The cover could not be fetched right now",
        )
        .with_retry_after(REMEMBER_FAILURE),
        _ => Error::not_found("封面", "Cover"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_fetch_per_url_and_failures_are_remembered() {
        let flights = CoverFlights::new(Duration::from_millis(50));
        let first = flights.fetch_slot("u").await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), flights.fetch_slot("u")).await;
        assert!(waiting.is_err(), "the second caller waits");
        let other = tokio::time::timeout(Duration::from_millis(50), flights.fetch_slot("v")).await;
        assert!(other.is_ok(), "other URLs do not");
        drop(other);
        drop(first);
        assert!(lock(&flights.per_url).is_empty(), "slots are forgotten");
        assert!(flights.recent_failure("u").is_none());
        flights.failed("u", ErrorKind::NotFound);
        assert_eq!(
            flights.recent_failure("u").unwrap().kind(),
            ErrorKind::NotFound
        );
        let mut held = Vec::new();
        for _ in 0..MAX_OUTBOUND {
            held.push(flights.outbound().await.unwrap());
        }
        assert!(flights.outbound().await.is_err());
    }
}
