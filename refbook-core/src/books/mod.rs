//! Books: the [`Isbn`] type, the [`BookSource`] seam and its sources (Douban v2 shape,
//! Open Library, Google Books, the local catalogue), the [`BookLookup`] chain, the cover
//! proxy, search and catalogue import — behind the [`Books`] service.

mod catalog;
mod collections;
mod cover_flights;
mod cover_type;
mod covers;
mod douban;
mod googlebooks;
mod lookup;
mod openlibrary;
mod passages;
mod progress;
mod source;
mod text_work;
mod texts;

use std::sync::Arc;
use std::time::Duration;

pub use crate::domain::SectionRef;
pub use crate::domain::{Book, BookFields, Cover, StoredBook, SOURCES};
pub use crate::domain::{Isbn, IsbnError};
pub use catalog::{parse_catalog, CatalogFormat, CatalogSource};
pub use cover_type::CoverType;
pub use covers::{host_allowed, url_allowed, CoverFetcher, DEFAULT_COVER_HOSTS};
pub use douban::Douban;
pub use googlebooks::GoogleBooks;
pub use lookup::{BookLookup, LookupObserver, LookupPolicy};
pub use openlibrary::OpenLibrary;
pub use passages::{Found, Passage, PassageQuery, MAX_PASSAGES, SECTION_PASSAGES};
pub use progress::Progress;
pub use source::{BookSource, SourceError};
pub use text_work::WorkSettings;
pub use texts::{AddedText, BookTexts};

use crate::config::BookSettings;
use crate::embed::EmbedderSource;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// The books service.
pub struct Books {
    store: Arc<dyn Store>,
    lookup: BookLookup,
    covers: CoverFetcher,
    cover_flights: cover_flights::CoverFlights,
    cover_proxy: bool,
    public_url: String,
    texts: BookTexts,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("sources", &self.lookup.source_names())
            .field("cover_proxy", &self.cover_proxy)
            .finish_non_exhaustive()
    }
}

/// The configured sources, in order: `REFBOOK_BOOK_SOURCES`, with `catalog` first when not
/// named, and Douban only when its base URL is configured.
///
/// # Errors
///
/// `Internal` for an unknown source name (a configuration mistake).
pub fn configured_sources(
    config: &BookSettings,
    store: &Arc<dyn Store>,
    client: &reqwest::Client,
) -> Result<Vec<Arc<dyn BookSource>>> {
    let mut names: Vec<String> = config
        .sources
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if !names.iter().any(|n| n == "catalog") {
        names.insert(0, "catalog".to_owned());
    }
    let mut sources: Vec<Arc<dyn BookSource>> = Vec::new();
    for name in names {
        match name.as_str() {
            "catalog" => sources.push(Arc::new(CatalogSource::new(store.clone()))),
            "douban" => match &config.douban_base_url {
                Some(base) => sources.push(Arc::new(Douban::new(
                    client.clone(),
                    base,
                    config.douban_apikey.clone(),
                ))),
                None => tracing::debug!("douban source skipped: REFBOOK_DOUBAN_BASE_URL is unset"),
            },
            "openlibrary" => sources.push(Arc::new(OpenLibrary::new(
                client.clone(),
                &config.openlibrary_base_url,
                &config.openlibrary_covers_url,
            ))),
            "googlebooks" => sources.push(Arc::new(GoogleBooks::new(
                client.clone(),
                &config.googlebooks_base_url,
                config.googlebooks_api_key.clone(),
            ))),
            other => {
                return Err(Error::internal(format!(
                    "unknown book source `{other}` in REFBOOK_BOOK_SOURCES (known: {})",
                    SOURCES.join(", ")
                )))
            }
        }
    }
    Ok(sources)
}

impl Books {
    /// The service over `store` with `sources` in order, configured by `config`; cover
    /// links start with `public_url` when one is set; books' texts are searched by meaning
    /// with `embedder`'s vectors.
    ///
    /// # Errors
    ///
    /// `Internal` when the cover fetcher's HTTP client cannot be built.
    pub fn new(
        config: &BookSettings,
        public_url: Option<&str>,
        store: Arc<dyn Store>,
        sources: Vec<Arc<dyn BookSource>>,
        observer: Option<LookupObserver>,
        embedder: Arc<EmbedderSource>,
    ) -> Result<Self> {
        let policy = LookupPolicy {
            fresh_for: Duration::from_secs(config.ttl_days.saturating_mul(86_400)),
            source_timeout: Duration::from_secs(config.source_timeout_secs.max(1)),
            miss_ttl: Duration::from_secs(config.miss_ttl_secs),
        };
        Ok(Self {
            lookup: BookLookup::new(store.clone(), sources, policy, observer),
            covers: CoverFetcher::new(
                config.cover_hosts.clone(),
                config.cover_max_bytes,
                Duration::from_secs(config.source_timeout_secs.max(1)),
            )?,
            cover_flights: cover_flights::CoverFlights::new(Duration::from_secs(
                config.source_timeout_secs.max(1),
            )),
            texts: BookTexts::new(store.clone(), config, embedder),
            store,
            cover_proxy: config.cover_proxy,
            public_url: public_url.unwrap_or("").trim_end_matches('/').to_owned(),
        })
    }

    /// Books' own texts: adding, listing, removing, searching.
    pub fn texts(&self) -> &BookTexts {
        &self.texts
    }

    /// The book with this ISBN, as clients should see it.
    ///
    /// # Errors
    ///
    /// As the lookup: `NotFound`, `UpstreamUnavailable`, `Internal`.
    pub async fn get(&self, isbn: &Isbn) -> Result<Book> {
        Ok(self.present(self.lookup.lookup(isbn).await?))
    }

    /// Stored books whose title or author contains `query`: `(count, page)`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for control characters in `query`; `Internal` when the database
    /// fails.
    pub async fn search(&self, query: &str, limit: i64, offset: i64) -> Result<(i64, Vec<Book>)> {
        crate::text::refuse_controls("q", query)?;
        let (count, books) = self.store.search_books(query.trim(), limit, offset).await?;
        Ok((count, books.into_iter().map(|b| self.present(b)).collect()))
    }

    /// The cover image of a stored book, fetched once and then served from the database.
    /// Concurrent requests for one cover share one fetch; a failed fetch is remembered for
    /// a minute; only a few fetches run at once.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when the book is not stored, has no cover or its cover is not a usable
    /// image; `UPSTREAM_UNAVAILABLE` when the cover host fails.
    pub async fn cover(&self, isbn: &Isbn) -> Result<Cover> {
        let no_cover = || Error::not_found("封面", "Cover");
        let stored = self.store.book(isbn).await?.ok_or_else(no_cover)?;
        let url = stored.book.cover_url.ok_or_else(no_cover)?;
        // A cover stored before the type rule (or altered in the database) is fetched
        // again rather than served as whatever type it claims.
        let kept = |cover: Option<Cover>| {
            cover.filter(|c| {
                c.source_url == url
                    && CoverType::checked(&c.content_type, &c.bytes)
                        .is_some_and(|t| t.as_str() == c.content_type)
            })
        };
        if let Some(cover) = kept(self.store.cover(isbn).await?) {
            return Ok(cover);
        }
        if let Some(err) = self.cover_flights.recent_failure(&url) {
            return Err(err);
        }
        let _slot = self.cover_flights.fetch_slot(&url).await;
        // Whoever had the turn before may have fetched it, or failed.
        if let Some(cover) = kept(self.store.cover(isbn).await?) {
            return Ok(cover);
        }
        if let Some(err) = self.cover_flights.recent_failure(&url) {
            return Err(err);
        }
        let _slot = self.cover_flights.outbound().await?;
        match self
            .covers
            .fetch(&url, stored.book.source == "douban")
            .await
        {
            Ok(cover) => {
                self.store.put_cover(isbn, &cover, Timestamp::now()).await?;
                Ok(cover)
            }
            Err(err) => {
                self.cover_flights.failed(&url, err.kind());
                Err(err)
            }
        }
    }

    /// Adds books to the local catalogue (all or none); returns how many.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails (then nothing is imported).
    pub async fn import_catalog(&self, entries: Vec<(Isbn, BookFields)>) -> Result<u64> {
        let now = Timestamp::now();
        let books: Vec<Book> = entries
            .into_iter()
            .map(|(isbn, fields)| fields.into_book(&isbn, "catalog", now))
            .collect();
        Ok(self.store.import_catalog(&books, now).await?)
    }

    /// The chain itself.
    pub fn lookup(&self) -> &BookLookup {
        &self.lookup
    }

    /// A stored book as clients see it: with cover proxying on, `cover_url` points at
    /// `/api/books/{isbn}/cover/` (under `REFBOOK_PUBLIC_URL` when set).
    pub fn present(&self, mut book: Book) -> Book {
        book.cover_url = self.present_cover(&book.isbn, book.cover_url);
        book
    }

    /// What clients should load for a book's cover: the proxy path when proxying is on and
    /// the book has a cover, else the source URL as it is.
    pub fn present_cover(&self, isbn: &Isbn, source_url: Option<String>) -> Option<String> {
        match source_url {
            Some(_) if self.cover_proxy => {
                Some(format!("{}/api/books/{isbn}/cover/", self.public_url))
            }
            other => other,
        }
    }
}
