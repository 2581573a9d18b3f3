//! The book as stored and as the contract shows it.

use serde::{Deserialize, Serialize, Serializer};

use crate::timestamp::Timestamp;

/// Where a book's record came from.
pub const SOURCES: [&str; 4] = ["douban", "openlibrary", "googlebooks", "catalog"];

/// A book record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// The ISBN (its ISBN-13 form is the key).
    pub isbn: super::Isbn,
    /// ISBN-10 (978 books only).
    pub isbn10: Option<String>,
    /// The title as the source gives it.
    pub title: String,
    /// The subtitle, if the book has one.
    pub subtitle: Option<String>,
    /// Authors, in order.
    pub authors: Vec<String>,
    /// Translators, in order (empty for books in their original language).
    pub translators: Vec<String>,
    /// The publisher's name.
    pub publisher: Option<String>,
    /// Publication date as the source wrote it (free text).
    pub published: Option<String>,
    /// Page count.
    pub pages: Option<i64>,
    /// Description of the book.
    pub introduction: Option<String>,
    /// About the author.
    pub author_intro: Option<String>,
    /// Cover image URL: the source's in storage; what clients should load when shown.
    pub cover_url: Option<String>,
    /// Subject tags.
    pub tags: Vec<String>,
    /// `douban`, `openlibrary`, `googlebooks` or `catalog`.
    pub source: String,
    /// When this record last changed.
    pub updated_at: Timestamp,
}

impl Book {
    /// The authors as one line: `A, B`.
    pub fn author_line(&self) -> String {
        self.authors.join(", ")
    }
}

/// The contract's JSON shape, with the derived `author` line.
#[derive(Serialize)]
struct BookJson<'a> {
    isbn: &'a str,
    isbn10: &'a Option<String>,
    title: &'a str,
    subtitle: &'a Option<String>,
    author: String,
    authors: &'a [String],
    translators: &'a [String],
    publisher: &'a Option<String>,
    published: &'a Option<String>,
    pages: &'a Option<i64>,
    introduction: &'a Option<String>,
    author_intro: &'a Option<String>,
    cover_url: &'a Option<String>,
    tags: &'a [String],
    source: &'a str,
    updated_at: Timestamp,
}

impl Serialize for Book {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BookJson {
            isbn: self.isbn.as_str(),
            isbn10: &self.isbn10,
            title: &self.title,
            subtitle: &self.subtitle,
            author: self.author_line(),
            authors: &self.authors,
            translators: &self.translators,
            publisher: &self.publisher,
            published: &self.published,
            pages: &self.pages,
            introduction: &self.introduction,
            author_intro: &self.author_intro,
            cover_url: &self.cover_url,
            tags: &self.tags,
            source: &self.source,
            updated_at: self.updated_at,
        }
        .serialize(serializer)
    }
}

/// The fields of a book without its identity and bookkeeping, as kept in the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookFields {
    /// The title as the source gives it.
    pub title: String,
    /// The subtitle, if the book has one.
    #[serde(default)]
    pub subtitle: Option<String>,
    /// Authors, in order.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Translators, in order (empty for books in their original language).
    #[serde(default)]
    pub translators: Vec<String>,
    /// The publisher's name.
    #[serde(default)]
    pub publisher: Option<String>,
    /// Publication date (free text).
    #[serde(default)]
    pub published: Option<String>,
    /// Page count.
    #[serde(default)]
    pub pages: Option<i64>,
    /// What the book is about.
    #[serde(default)]
    pub introduction: Option<String>,
    /// About the author.
    #[serde(default)]
    pub author_intro: Option<String>,
    /// Cover image URL.
    #[serde(default)]
    pub cover_url: Option<String>,
    /// Subject tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl BookFields {
    /// A book record of these fields for `isbn` from `source`.
    pub fn into_book(self, isbn: &super::Isbn, source: &str, now: Timestamp) -> Book {
        Book {
            isbn: isbn.clone(),
            isbn10: isbn.isbn10(),
            title: self.title,
            subtitle: self.subtitle,
            authors: self.authors,
            translators: self.translators,
            publisher: self.publisher,
            published: self.published,
            pages: self.pages,
            introduction: self.introduction,
            author_intro: self.author_intro,
            cover_url: self.cover_url,
            tags: self.tags,
            source: source.to_owned(),
            updated_at: now,
        }
    }
}

impl From<&Book> for BookFields {
    fn from(book: &Book) -> Self {
        Self {
            title: book.title.clone(),
            subtitle: book.subtitle.clone(),
            authors: book.authors.clone(),
            translators: book.translators.clone(),
            publisher: book.publisher.clone(),
            published: book.published.clone(),
            pages: book.pages,
            introduction: book.introduction.clone(),
            author_intro: book.author_intro.clone(),
            cover_url: book.cover_url.clone(),
            tags: book.tags.clone(),
        }
    }
}

/// A stored cover image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// The URL it was fetched from.
    pub source_url: String,
    /// `image/jpeg`, `image/png`, …
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
}

/// A stored book and how fresh it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBook {
    /// The record.
    pub book: Book,
    /// When it was fetched from its source.
    pub fetched_at: Timestamp,
}
