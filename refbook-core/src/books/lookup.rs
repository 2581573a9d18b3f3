//! The lookup chain: the stored copy while fresh, then each source in order; the first hit
//! is stored. One upstream lookup per ISBN at a time; clean misses are remembered briefly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::source::BookSource;
use super::{Book, Isbn, StoredBook};
use crate::error::{Error, ErrorKind};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// Why a lookup found no book; cloneable so concurrent callers can share one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Every source answered cleanly without the book (or some did and the others failed).
    NotFound,
    /// Every source failed and there is no stored copy.
    Unavailable,
    /// The store failed (message for the log).
    Internal(String),
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotFound => Error::not_found("图书", "Book"),
            Failure::Unavailable => Error::new(
                ErrorKind::UpstreamUnavailable,
                "图书信息源暂时不可用，请稍后再试",
                "Book sources are unavailable right now; please try again later",
            ),
            Failure::Internal(cause) => Error::internal(cause),
        }
    }
}

type Flight = Shared<BoxFuture<'static, Result<Book, Failure>>>;

/// How the chain behaves.
#[derive(Debug, Clone, Copy)]
pub struct LookupPolicy {
    /// How long a stored book counts as fresh.
    pub fresh_for: Duration,
    /// How long one source may take.
    pub source_timeout: Duration,
    /// How long a clean "not found anywhere" is remembered.
    pub miss_ttl: Duration,
}

/// Outcome counts per source, for metrics and tests: `(source, outcome)`.
pub type LookupObserver = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The book lookup chain; cheap to clone.
#[derive(Clone)]
pub struct BookLookup {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sources: Vec<Arc<dyn BookSource>>,
    policy: LookupPolicy,
    /// Stored books lately read or written here, so hot books skip the database. Entries
    /// live a minute (a refresh on another instance is seen within it) and are used only
    /// while fresh by the chain's rule, as the stored copy would be.
    memory: moka::sync::Cache<String, StoredBook>,
    /// ISBNs no source had, until when.
    misses: Mutex<HashMap<String, Instant>>,
    /// Lookups under way, shared by every caller asking for the same ISBN.
    flights: Mutex<HashMap<String, Flight>>,
    observer: Option<LookupObserver>,
}

/// The most books kept in memory.
const MEMORY_BOOKS: u64 = 10_000;

/// How long a book stays in memory before the database is asked again.
const MEMORY_TTL: Duration = Duration::from_secs(60);

/// The most remembered misses; past it, expired ones are dropped (then all, if need be).
const MAX_MISSES: usize = 10_000;

impl BookLookup {
    /// A chain over `sources` (in order) storing into `store`. The optional `observer`
    /// hears each source outcome (`hit`, `miss`, `error`) and the cache's (`cache` with
    /// `fresh`, `stale` or `negative`), for metrics.
    pub fn new(
        store: Arc<dyn Store>,
        sources: Vec<Arc<dyn BookSource>>,
        policy: LookupPolicy,
        observer: Option<LookupObserver>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sources,
                policy,
                memory: moka::sync::Cache::builder()
                    .max_capacity(MEMORY_BOOKS)
                    .time_to_live(MEMORY_TTL)
                    .build(),
                misses: Mutex::new(HashMap::new()),
                flights: Mutex::new(HashMap::new()),
                observer,
            }),
        }
    }

    /// The names of the sources, in order.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.inner.sources.iter().map(|s| s.name()).collect()
    }

    /// The book with this ISBN.
    ///
    /// # Errors
    ///
    /// `NotFound` when no source has the book, `UpstreamUnavailable` when every source
    /// failed and nothing is stored; `Internal` when the database fails.
    pub async fn lookup(&self, isbn: &Isbn) -> Result<Book, Error> {
        let inner = &self.inner;
        if let Some(kept) = inner.memory.get(isbn.as_str()) {
            if inner.is_fresh(&kept) {
                inner.observe("cache", "fresh");
                return Ok(kept.book);
            }
        }
        let stored = inner.store.book(isbn).await?;
        if let Some(stored) = &stored {
            if inner.is_fresh(stored) {
                inner.observe("cache", "fresh");
                inner
                    .memory
                    .insert(isbn.as_str().to_owned(), stored.clone());
                return Ok(stored.book.clone());
            }
        }
        if stored.is_none() && inner.is_recent_miss(isbn.as_str()) {
            inner.observe("cache", "negative");
            return Err(Failure::NotFound.into());
        }
        let flight = {
            let mut flights = lock(&inner.flights);
            match flights.get(isbn.as_str()) {
                Some(flight) => flight.clone(),
                None => {
                    // A flight may have landed since the reads above: it leaves its book in
                    // memory (or its miss remembered) before it leaves the map, so look
                    // again under the lock rather than start a second upstream call.
                    if let Some(kept) = inner.memory.get(isbn.as_str()) {
                        if inner.is_fresh(&kept) {
                            inner.observe("cache", "fresh");
                            return Ok(kept.book);
                        }
                    }
                    if stored.is_none() && inner.is_recent_miss(isbn.as_str()) {
                        inner.observe("cache", "negative");
                        return Err(Failure::NotFound.into());
                    }
                    // The fetch runs as its own task: a caller that goes away does not
                    // cancel it for the others.
                    let task = tokio::spawn(Inner::fetch(self.inner.clone(), isbn.clone()));
                    let flight = async move {
                        task.await
                            .unwrap_or_else(|e| Err(Failure::Internal(format!("lookup task: {e}"))))
                    }
                    .boxed()
                    .shared();
                    flights.insert(isbn.as_str().to_owned(), flight.clone());
                    flight
                }
            }
        };
        Ok(flight.await?)
    }
}

/// Removes a lookup's flight when the lookup ends, however it ends.
struct Landing<'a> {
    inner: &'a Inner,
    isbn: &'a str,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        lock(&self.inner.flights).remove(self.isbn);
    }
}

impl Inner {
    fn observe(&self, source: &str, outcome: &str) {
        if let Some(observer) = &self.observer {
            observer(source, outcome);
        }
    }

    /// Whether a stored copy is fresh enough to serve without asking the sources.
    fn is_fresh(&self, stored: &StoredBook) -> bool {
        let fresh_ms = i64::try_from(self.policy.fresh_for.as_millis()).unwrap_or(i64::MAX);
        Timestamp::now()
            .millis()
            .saturating_sub(stored.fetched_at.millis())
            < fresh_ms
    }

    /// Stores a book (fetched or confirmed at `now`) and keeps it in memory.
    async fn keep(&self, book: &Book, now: Timestamp) -> Result<(), Failure> {
        self.store
            .upsert_book(book, now)
            .await
            .map_err(|e| Failure::Internal(e.to_string()))?;
        self.memory.insert(
            book.isbn.as_str().to_owned(),
            StoredBook {
                book: book.clone(),
                fetched_at: now,
            },
        );
        Ok(())
    }

    fn is_recent_miss(&self, isbn: &str) -> bool {
        let mut misses = lock(&self.misses);
        match misses.get(isbn) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                misses.remove(isbn);
                false
            }
            None => false,
        }
    }

    fn remember_miss(&self, isbn: &str) {
        if self.policy.miss_ttl.is_zero() {
            return;
        }
        let mut misses = lock(&self.misses);
        if misses.len() >= MAX_MISSES {
            let now = Instant::now();
            misses.retain(|_, until| *until > now);
            if misses.len() >= MAX_MISSES {
                misses.clear();
            }
        }
        misses.insert(isbn.to_owned(), Instant::now() + self.policy.miss_ttl);
    }

    async fn fetch(self: Arc<Self>, isbn: Isbn) -> Result<Book, Failure> {
        // Results (the stored book, the remembered miss) are in place before the flight
        // ends, so a caller arriving next finds them instead of starting another. The
        // guard removes the flight on every outcome, a panicking source included.
        let _landing = Landing {
            inner: &self,
            isbn: isbn.as_str(),
        };
        self.fetch_from_sources(&isbn).await
    }

    async fn fetch_from_sources(&self, isbn: &Isbn) -> Result<Book, Failure> {
        let internal = |e: crate::store::StoreError| Failure::Internal(e.to_string());
        let stale = self.store.book(isbn).await.map_err(internal)?;
        let (mut missed, mut failed) = (0usize, 0usize);
        for source in &self.sources {
            let answer =
                tokio::time::timeout(self.policy.source_timeout, source.lookup(isbn)).await;
            match answer {
                Ok(Ok(Some(mut book))) => {
                    self.observe(source.name(), "hit");
                    let now = Timestamp::now();
                    book.isbn = isbn.clone();
                    book.isbn10 = isbn.isbn10();
                    book.source = source.name().to_owned();
                    book.updated_at = now;
                    self.keep(&book, now).await?;
                    return Ok(book);
                }
                Ok(Ok(None)) => {
                    self.observe(source.name(), "miss");
                    missed += usize::from(!source.is_local());
                }
                Ok(Err(err)) => {
                    self.observe(source.name(), "error");
                    tracing::warn!(source = source.name(), isbn = %isbn, error = %err, "book source failed");
                    failed += 1;
                }
                Err(_) => {
                    self.observe(source.name(), "error");
                    tracing::warn!(source = source.name(), isbn = %isbn, "book source timed out");
                    failed += 1;
                }
            }
        }
        match stale {
            Some(stale) => {
                self.observe("cache", "stale");
                if failed == 0 {
                    // Every source cleanly lacks it now: keep our copy, fresh again, rather
                    // than asking them on every request.
                    self.keep(&stale.book, Timestamp::now()).await?;
                } else {
                    tracing::info!(isbn = %isbn, "sources failed; serving the stored copy");
                }
                Ok(stale.book)
            }
            None if failed == 0 => {
                self.remember_miss(isbn.as_str());
                Err(Failure::NotFound)
            }
            None if missed > 0 => Err(Failure::NotFound),
            None => Err(Failure::Unavailable),
        }
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
