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

    /// GETs the JSON at the path made of `segments` under the base URL. Each segment is
    /// joined as one path segment (escaped), so nothing in it can reach the authority.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>, SourceError> {
        let mut url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| SourceError::Network(format!("bad Open Library base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| SourceError::Network("bad Open Library base URL".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        match get_ok_or_404(self.client.get(url)).await? {
            Some(body) => decode(&body).map(Some),
            None => Ok(None),
        }
    }
}

/// The kinds of Open Library record a lookup follows, by their documented keys.
#[derive(Clone, Copy)]
enum RecordKind {
    /// `/authors/OL…A`
    Author,
    /// `/works/OL…W`
    Work,
}

/// The file (`OL23919A.json`) of a record whose key has its documented form
/// (`/authors/OL23919A`, `/works/OL45883W`); `None` for anything else. The key comes from
/// the upstream's JSON: it names a record, never a host or a path of its choosing.
fn record_file(key: &str, kind: RecordKind) -> Option<String> {
    let (folder, suffix) = match kind {
        RecordKind::Author => ("/authors/", 'A'),
        RecordKind::Work => ("/works/", 'W'),
    };
    let id = key.strip_prefix(folder)?;
    let digits = id.strip_prefix("OL")?.strip_suffix(suffix)?;
    let valid = (1..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("{id}.json"))
}

#[async_trait]
impl BookSource for OpenLibrary {
    fn name(&self) -> &'static str {
        "openlibrary"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        let Some(edition) = self
            .get::<Edition>(&["isbn", &format!("{isbn}.json")])
            .await?
        else {
            return Ok(None);
        };
        let Some(title) = clean(edition.title) else {
            return Ok(None);
        };
        let mut authors = Vec::new();
        let mut author_intro = None;
        for author in &edition.authors {
            let Some(file) = record_file(&author.key, RecordKind::Author) else {
                tracing::warn!(
                    source = "openlibrary",
                    "author key not of the documented form; skipped"
                );
                continue;
            };
            if let Some(found) = self.get::<Author>(&["authors", &file]).await? {
                authors.extend(clean(found.name));
                if author_intro.is_none() {
                    author_intro = clean(found.bio.map(Text::into_string));
                }
            }
        }
        let mut introduction = clean(edition.description.map(Text::into_string));
        let mut tags = clean_list(edition.subjects);
        let work_file = edition
            .works
            .first()
            .and_then(|work| record_file(&work.key, RecordKind::Work));
        if let Some(work_file) = work_file {
            if introduction.is_none() || tags.is_empty() {
                // The work is optional detail: its failure does not fail the lookup.
                if let Ok(Some(work)) = self.get::<Work>(&["works", &work_file]).await {
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

#[cfg(test)]
mod tests {
    use super::{record_file, RecordKind};

    #[test]
    fn only_documented_record_keys_become_paths() {
        assert_eq!(
            record_file("/authors/OL23919A", RecordKind::Author).as_deref(),
            Some("OL23919A.json")
        );
        assert_eq!(
            record_file("/works/OL45883W", RecordKind::Work).as_deref(),
            Some("OL45883W.json")
        );
        for hostile in [
            "@127.0.0.1:9/x",
            ".evil.example/x",
            "/authors/OL1A/../../x",
            "/authors/OL1A?x=1",
            "/authors/OLA",
            "/authors/OL12W",
            "/works/OL12A",
            "/authors/OL1234567890123A",
            "//evil.example/authors/OL1A",
            "",
        ] {
            assert_eq!(record_file(hostile, RecordKind::Author), None, "{hostile}");
            assert_eq!(record_file(hostile, RecordKind::Work), None, "{hostile}");
        }
    }
}
