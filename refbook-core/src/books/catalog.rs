//! The local catalogue: books imported from CSV or JSON files, consulted as a source.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::source::{clean, clean_list, BookSource, SourceError};
use super::{Book, BookFields, Isbn};
use crate::store::Store;

/// The `catalog` source: the imported catalogue in the store.
pub struct CatalogSource {
    store: Arc<dyn Store>,
}

impl CatalogSource {
    /// The catalogue kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl BookSource for CatalogSource {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        self.store
            .catalog_book(isbn)
            .await
            .map_err(|e| SourceError::Network(e.to_string()))
    }
}

/// A catalogue file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogFormat {
    /// A header row, then one book per row. List columns (`authors`, `translators`, `tags`)
    /// separate entries with `;`.
    Csv,
    /// An array of book objects; list fields may be arrays or `;`-separated strings.
    Json,
}

impl CatalogFormat {
    /// The format a file name suggests (`.json` or else CSV).
    pub fn from_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Csv,
        }
    }
}

/// A list given as an array or as one `;`-separated string.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum ListField {
    #[default]
    Missing,
    Many(Vec<String>),
    Joined(String),
}

impl ListField {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Missing => Vec::new(),
            Self::Many(items) => clean_list(items),
            Self::Joined(text) => clean_list(text.split([';', '；']).map(str::to_owned)),
        }
    }
}

/// A page count given as a number or as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum PagesField {
    Number(i64),
    Text(String),
}

#[derive(Deserialize)]
struct Entry {
    isbn: String,
    title: Option<String>,
    subtitle: Option<String>,
    #[serde(default, alias = "author")]
    authors: ListField,
    #[serde(default)]
    translators: ListField,
    publisher: Option<String>,
    published: Option<String>,
    pages: Option<PagesField>,
    introduction: Option<String>,
    author_intro: Option<String>,
    cover_url: Option<String>,
    #[serde(default)]
    tags: ListField,
}

impl Entry {
    fn into_fields(self, at: &str) -> Result<(Isbn, BookFields), String> {
        let isbn =
            Isbn::parse(&self.isbn).map_err(|e| format!("{at}: isbn `{}`: {e}", self.isbn))?;
        let title = clean(self.title).ok_or_else(|| format!("{at}: title is required"))?;
        let pages = match self.pages {
            None => None,
            Some(PagesField::Number(n)) => Some(n),
            Some(PagesField::Text(t)) if t.trim().is_empty() => None,
            Some(PagesField::Text(t)) => Some(
                t.trim()
                    .parse()
                    .map_err(|_| format!("{at}: pages `{t}` is not a number"))?,
            ),
        };
        let cover_url = clean(self.cover_url);
        if cover_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(format!("{at}: cover_url must be an http(s) URL"));
        }
        Ok((
            isbn,
            BookFields {
                title,
                subtitle: clean(self.subtitle),
                authors: self.authors.into_vec(),
                translators: self.translators.into_vec(),
                publisher: clean(self.publisher),
                published: clean(self.published),
                pages: pages.filter(|p| *p > 0),
                introduction: clean(self.introduction),
                author_intro: clean(self.author_intro),
                cover_url,
                tags: self.tags.into_vec(),
            },
        ))
    }
}

/// Parses a catalogue file. Every problem is reported (with its row or index); any
/// problem means nothing should be imported.
///
/// # Errors
///
/// Every problem found, one line each.
pub fn parse_catalog(
    text: &str,
    format: CatalogFormat,
) -> Result<Vec<(Isbn, BookFields)>, Vec<String>> {
    let mut books = Vec::new();
    let mut problems = Vec::new();
    match format {
        CatalogFormat::Json => match serde_json::from_str::<Vec<serde_json::Value>>(text) {
            Ok(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let at = format!("entry {}", i + 1);
                    match serde_json::from_value::<Entry>(item) {
                        Ok(entry) => match entry.into_fields(&at) {
                            Ok(book) => books.push(book),
                            Err(problem) => problems.push(problem),
                        },
                        Err(e) => problems.push(format!("{at}: {e}")),
                    }
                }
            }
            Err(e) => problems.push(format!("not a JSON array of books: {e}")),
        },
        CatalogFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(false)
                .from_reader(text.as_bytes());
            for (i, row) in reader.deserialize::<Entry>().enumerate() {
                let at = format!("row {}", i + 2);
                match row {
                    Ok(entry) => match entry.into_fields(&at) {
                        Ok(book) => books.push(book),
                        Err(problem) => problems.push(problem),
                    },
                    Err(e) => problems.push(format!("{at}: {e}")),
                }
            }
        }
    }
    if books.is_empty() && problems.is_empty() {
        problems.push("the file holds no books".to_owned());
    }
    if problems.is_empty() {
        Ok(books)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_books() {
        let csv = "isbn,title,authors,translators,publisher,pages,tags\n\
                   978-7-5366-9293-0,三体,刘慈欣,,重庆出版社,302,科幻;小说\n\
                   0140328726,Fantastic Mr. Fox,Roald Dahl;Quentin Blake,,Puffin,,\n";
        let books = parse_catalog(csv, CatalogFormat::Csv).unwrap();
        assert_eq!(books.len(), 2);
        assert_eq!(books[0].0.as_str(), "9787536692930");
        assert_eq!(books[0].1.tags, ["科幻", "小说"]);
        assert_eq!(books[0].1.pages, Some(302));
        assert_eq!(books[1].0.as_str(), "9780140328721");
        assert_eq!(books[1].1.authors, ["Roald Dahl", "Quentin Blake"]);
        assert_eq!(books[1].1.pages, None);
    }

    #[test]
    fn json_entries_accept_arrays_or_joined_strings() {
        let json = r#"[{"isbn": "9787020002207", "title": "红楼梦", "authors": ["曹雪芹", "高鹗"], "pages": "1606"},
                       {"isbn": "9780262033848", "title": "CLRS", "author": "Cormen; Leiserson"}]"#;
        let books = parse_catalog(json, CatalogFormat::Json).unwrap();
        assert_eq!(books[0].1.authors, ["曹雪芹", "高鹗"]);
        assert_eq!(books[0].1.pages, Some(1606));
        assert_eq!(books[1].1.authors, ["Cormen", "Leiserson"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let csv = "isbn,title\n9787536692931,bad checksum\n9787536692930,\nnot-an-isbn,x\n";
        let problems = parse_catalog(csv, CatalogFormat::Csv).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("row 2"));
        assert!(problems[1].contains("title is required"));
        assert!(parse_catalog("{}", CatalogFormat::Json).is_err());
        assert!(parse_catalog("isbn,title\n", CatalogFormat::Csv).is_err());
    }
}
