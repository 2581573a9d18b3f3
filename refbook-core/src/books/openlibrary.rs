//! Open Library: `/isbn/{isbn}.json` (302 to the edition, followed), author names from
//! `/authors/…json`, the work's description when the edition has none.

use async_trait::async_trait;
use serde::Deserialize;

use super::source::{clean, clean_list, decode, get_ok_or_404, BookSource, SourceError};
use super::{Book, BookFields, Isbn};
use crate::timestamp::Timestamp;

/// The Open Library source.
#[derive(Debug, Clone)]
pub struct OpenLibrary {
    client: reqwest::Client,
    base_url: String,
    covers_url: String,
}

#[derive(Deserialize)]
struct KeyRef {
    key: String,
}

/// `description`/`bio`: a string or `{"type": "/type/text", "value": "…"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Plain(String),
    Typed { value: String },
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Self::Plain(s) | Self::Typed { value: s } => s,
        }
    }
}

#[derive(Deserialize)]
struct Edition {
    title: Option<String>,
    subtitle: Option<String>,
    #[serde(default)]
    authors: Vec<KeyRef>,
    #[serde(default)]
    works: Vec<KeyRef>,
    #[serde(default)]
    publishers: Vec<String>,
    publish_date: Option<String>,
    number_of_pages: Option<i64>,
    #[serde(default)]
    covers: Vec<i64>,
    description: Option<Text>,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    translated_by: Vec<String>,
}

#[derive(Deserialize)]
struct Author {
    name: Option<String>,
    bio: Option<Text>,
}

#[derive(Deserialize)]
struct Work {
    description: Option<Text>,
    #[serde(default)]
    subjects: Vec<String>,
}

impl OpenLibrary {
    /// A source at `base_url` (`https://openlibrary.org`), with covers from `covers_url`
    /// (`https://covers.openlibrary.org`).
    pub fn new(client: reqwest::Client, base_url: &str, covers_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            covers_url: covers_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, SourceError> {
        let url = format!("{}{path}", self.base_url);
        match get_ok_or_404(self.client.get(url)).await? {
            Some(body) => decode(&body).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl BookSource for OpenLibrary {
    fn name(&self) -> &'static str {
        "openlibrary"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        let Some(edition) = self.get::<Edition>(&format!("/isbn/{isbn}.json")).await? else {
            return Ok(None);
        };
        let Some(title) = clean(edition.title) else {
            return Ok(None);
        };
        let mut authors = Vec::new();
        let mut author_intro = None;
        for author in &edition.authors {
            if let Some(found) = self.get::<Author>(&format!("{}.json", author.key)).await? {
                authors.extend(clean(found.name));
                if author_intro.is_none() {
                    author_intro = clean(found.bio.map(Text::into_string));
                }
            }
        }
        let mut introduction = clean(edition.description.map(Text::into_string));
        let mut tags = clean_list(edition.subjects);
        if let Some(work) = edition.works.first() {
            if introduction.is_none() || tags.is_empty() {
                // The work is optional detail: its failure does not fail the lookup.
                if let Ok(Some(work)) = self.get::<Work>(&format!("{}.json", work.key)).await {
                    introduction =
                        introduction.or_else(|| clean(work.description.map(Text::into_string)));
                    if tags.is_empty() {
                        tags = clean_list(work.subjects);
                    }
                }
            }
        }
        tags.truncate(20);
        let cover_url = edition
            .covers
            .iter()
            .find(|id| **id > 0)
            .map(|id| format!("{}/b/id/{id}-L.jpg?default=false", self.covers_url));
        Ok(Some(
            BookFields {
                title,
                subtitle: clean(edition.subtitle),
                authors,
                translators: clean_list(edition.translated_by),
                publisher: clean(edition.publishers.into_iter().next()),
                published: clean(edition.publish_date),
                pages: edition.number_of_pages.filter(|p| *p > 0),
                introduction,
                author_intro,
                cover_url,
                tags,
            }
            .into_book(isbn, self.name(), Timestamp::now()),
        ))
    }
}
