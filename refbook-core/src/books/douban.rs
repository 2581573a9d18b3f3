//! Douban's v2 book API shape, at a configured (self-hosted compatible) base URL.

use async_trait::async_trait;
use serde::Deserialize;

use super::source::bytes_body::fetch;
use super::source::{clean, clean_list, decode, status_error, BookSource, SourceError};
use super::{Book, BookFields, Isbn};
use crate::config::Secret;
use crate::timestamp::Timestamp;

/// Douban "book not found".
const NOT_FOUND_CODE: i64 = 6000;

/// A Douban v2-compatible source.
#[derive(Debug, Clone)]
pub struct Douban {
    client: reqwest::Client,
    base_url: String,
    apikey: Option<Secret>,
}

#[derive(Deserialize)]
struct Tag {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Images {
    large: Option<String>,
    medium: Option<String>,
}

/// A number some services send as a string (`"873"`, `"873页"`) and others as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(i64),
    Text(String),
}

impl Loose {
    fn leading_number(self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(n),
            Self::Text(t) => {
                let digits: String = t.trim().chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            }
        }
    }
}

#[derive(Deserialize)]
struct DoubanBook {
    title: Option<String>,
    subtitle: Option<String>,
    #[serde(default)]
    author: Vec<String>,
    #[serde(default)]
    translator: Vec<String>,
    #[serde(default)]
    translators: Vec<String>,
    publisher: Option<String>,
    pubdate: Option<String>,
    pages: Option<Loose>,
    summary: Option<String>,
    author_intro: Option<String>,
    image: Option<String>,
    images: Option<Images>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct DoubanError {
    code: Option<i64>,
}

impl Douban {
    /// A source at `base_url` serving `/v2/book/isbn/{isbn}`.
    pub fn new(client: reqwest::Client, base_url: &str, apikey: Option<Secret>) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            apikey,
        }
    }
}

/// A cover URL unless it is Douban's "no cover" placeholder.
fn real_cover(url: Option<String>) -> Option<String> {
    clean(url).filter(|u| !u.contains("book-default"))
}

#[async_trait]
impl BookSource for Douban {
    fn name(&self) -> &'static str {
        "douban"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        let mut request = self
            .client
            .get(format!("{}/v2/book/isbn/{isbn}", self.base_url));
        if let Some(key) = &self.apikey {
            request = request.query(&[("apikey", key.expose())]);
        }
        let (status, body) = fetch(request).await?;
        if status != 200 {
            let code = decode::<DoubanError>(&body).ok().and_then(|e| e.code);
            return match (status, code) {
                (_, Some(NOT_FOUND_CODE)) | (404, None) => Ok(None),
                // 104/105 bad or blocked key, 112 IP rate limit: the source is unusable now.
                (_, Some(112)) => Err(SourceError::RateLimited(status)),
                _ => Err(status_error(status)),
            };
        }
        let found: DoubanBook = decode(&body)?;
        let Some(title) = clean(found.title) else {
            return Ok(None);
        };
        let images = found.images;
        let cover = images
            .and_then(|i| real_cover(i.large).or_else(|| real_cover(i.medium)))
            .or_else(|| real_cover(found.image));
        let mut translators = clean_list(found.translator);
        if translators.is_empty() {
            translators = clean_list(found.translators);
        }
        Ok(Some(
            BookFields {
                title,
                subtitle: clean(found.subtitle),
                authors: clean_list(found.author),
                translators,
                publisher: clean(found.publisher),
                published: clean(found.pubdate),
                pages: found
                    .pages
                    .and_then(Loose::leading_number)
                    .filter(|p| *p > 0),
                introduction: clean(found.summary),
                author_intro: clean(found.author_intro),
                cover_url: cover,
                tags: clean_list(found.tags.into_iter().filter_map(|t| t.name)),
            }
            .into_book(isbn, self.name(), Timestamp::now()),
        ))
    }
}
