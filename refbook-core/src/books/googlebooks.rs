//! Google Books: `volumes?q=isbn:…`, accepting only an item whose identifiers contain the
//! ISBN asked for (it sometimes answers with another book).

use async_trait::async_trait;
use serde::Deserialize;

use super::source::bytes_body::fetch;
use super::source::{clean, clean_list, decode, status_error, BookSource, SourceError};
use super::{Book, BookFields, Isbn};
use crate::config::Secret;
use crate::timestamp::Timestamp;

/// The Google Books source.
#[derive(Debug, Clone)]
pub struct GoogleBooks {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
}

#[derive(Deserialize)]
struct Volumes {
    #[serde(default)]
    items: Vec<Volume>,
}

#[derive(Deserialize)]
struct Volume {
    #[serde(rename = "volumeInfo")]
    info: VolumeInfo,
}

#[derive(Deserialize)]
struct Identifier {
    identifier: String,
}

#[derive(Deserialize)]
struct ImageLinks {
    thumbnail: Option<String>,
    #[serde(rename = "smallThumbnail")]
    small_thumbnail: Option<String>,
}

#[derive(Deserialize)]
struct VolumeInfo {
    title: Option<String>,
    subtitle: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    publisher: Option<String>,
    #[serde(rename = "publishedDate")]
    published_date: Option<String>,
    description: Option<String>,
    #[serde(default, rename = "industryIdentifiers")]
    identifiers: Vec<Identifier>,
    #[serde(rename = "pageCount")]
    page_count: Option<i64>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(rename = "imageLinks")]
    image_links: Option<ImageLinks>,
}

impl VolumeInfo {
    fn is_for(&self, isbn: &Isbn) -> bool {
        self.identifiers
            .iter()
            .any(|id| Isbn::parse(&id.identifier).is_ok_and(|parsed| &parsed == isbn))
    }
}

impl GoogleBooks {
    /// A source at `base_url` (`https://www.googleapis.com`).
    pub fn new(client: reqwest::Client, base_url: &str, api_key: Option<Secret>) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        }
    }
}

/// Google's thumbnails are `http://` URLs: ask for the same image over https.
fn https(url: String) -> String {
    match url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => url,
    }
}

#[async_trait]
impl BookSource for GoogleBooks {
    fn name(&self) -> &'static str {
        "googlebooks"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        let mut request = self
            .client
            .get(format!("{}/books/v1/volumes", self.base_url))
            .query(&[("q", format!("isbn:{isbn}"))]);
        if let Some(key) = &self.api_key {
            request = request.query(&[("key", key.expose())]);
        }
        let (status, body) = fetch(request).await?;
        if status != 200 {
            return Err(status_error(status));
        }
        let volumes: Volumes = decode(&body)?;
        let Some(info) = volumes
            .items
            .into_iter()
            .map(|v| v.info)
            .find(|i| i.is_for(isbn))
        else {
            return Ok(None);
        };
        let Some(title) = clean(info.title) else {
            return Ok(None);
        };
        let cover = info
            .image_links
            .and_then(|l| clean(l.thumbnail).or_else(|| clean(l.small_thumbnail)))
            .map(https);
        Ok(Some(
            BookFields {
                title,
                subtitle: clean(info.subtitle),
                authors: clean_list(info.authors),
                translators: Vec::new(),
                publisher: clean(info.publisher),
                published: clean(info.published_date),
                pages: info.page_count.filter(|p| *p > 0),
                introduction: clean(info.description),
                author_intro: None,
                cover_url: cover,
                tags: clean_list(info.categories),
            }
            .into_book(isbn, self.name(), Timestamp::now()),
        ))
    }
}
