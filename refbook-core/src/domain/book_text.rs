//! A book's own text as stored: its format, sections, chunks, and who it belongs to.

use serde::{Deserialize, Serialize};

use super::{Isbn, UserId};
use crate::timestamp::Timestamp;

/// The formats a book's text is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// Plain text (UTF-8, GB18030 or GBK).
    Plain,
    /// Markdown (`#` headings are sections).
    Markdown,
    /// EPUB (the spine's chapters are sections).
    Epub,
}

impl TextFormat {
    /// The stored and shown name (`plain`, `markdown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Markdown => "markdown",
            Self::Epub => "epub",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "plain" => Some(Self::Plain),
            "markdown" => Some(Self::Markdown),
            "epub" => Some(Self::Epub),
            _ => None,
        }
    }

    /// The format of a file named `name` (`.md`/`.markdown`: Markdown, `.epub`: EPUB, else
    /// plain text).
    pub fn of_file_name(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".md") || lower.ends_with(".markdown") {
            Self::Markdown
        } else if lower.ends_with(".epub") {
            Self::Epub
        } else {
            Self::Plain
        }
    }
}

/// A part of a book's text (a chapter, an act, a heading's span), in reading order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextSection {
    /// Its place in reading order, from 0.
    pub index: u32,
    /// Its heading (empty for text before the first heading).
    pub title: String,
    /// Where it starts, in characters.
    pub start: usize,
    /// Where it ends (exclusive), in characters.
    pub end: usize,
}

/// A few sentences of one section: what search finds and the model is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    /// The section it belongs to.
    pub section: u32,
    /// Where it starts, in characters.
    pub start: usize,
    /// Where it ends (exclusive), in characters.
    pub end: usize,
    /// Its text.
    pub text: String,
}

/// Where a stored text is on its way to serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextState {
    /// Stored whole; its vectors are being computed (the previous text still serves).
    Indexing,
    /// Serving: search and answers use it.
    Ready,
    /// Indexing failed (the reason is kept; the previous text still serves).
    Failed,
}

impl TextState {
    /// The stored and shown name (`indexing`, `ready`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Indexing => "indexing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "indexing" => Some(Self::Indexing),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Whose a stored text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextScope {
    /// The library's: every reader's conversations about the book use it.
    Library,
    /// A reader's own copy: theirs only, and it wins over the library's for them.
    Reader(UserId),
}

/// A stored text's description (not its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookTextInfo {
    /// Its id.
    pub id: i64,
    /// The book.
    pub isbn: Isbn,
    /// Whose it is.
    pub scope: TextScope,
    /// The SHA-256 of the file it was read from (hex).
    pub sha256: String,
    /// The format it was read as.
    pub format: TextFormat,
    /// Its length in characters.
    pub chars: usize,
    /// How many chunks it was cut into.
    pub chunks: usize,
    /// When it was added.
    pub created_at: Timestamp,
    /// Where it is on its way to serving.
    pub state: TextState,
    /// Why indexing failed (state `Failed`).
    pub error: Option<String>,
    /// The embedder its stored vectors are from, if any.
    pub embed_model: Option<String>,
    /// How many of its chunks have a vector (from `embed_model`).
    pub vectors: usize,
}

impl BookTextInfo {
    /// Whether every chunk has a vector from the embedder named `model`.
    pub fn has_vectors_of(&self, model: Option<&str>) -> bool {
        model.is_some() && self.embed_model.as_deref() == model && self.vectors == self.chunks
    }
}

/// Which section of a book's text something is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionRef {
    /// The section's place in reading order, from 0.
    pub index: u32,
    /// Its heading (empty for text before the first heading).
    pub title: String,
}

/// A passage of the book's text a reply was given, numbered as the reply cites it
/// (`[n]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Its number, from 1.
    pub n: u32,
    /// Where it is.
    pub section: SectionRef,
    /// Its start in the book's text, in characters.
    pub start: usize,
    /// Its end (exclusive), in characters.
    pub end: usize,
    /// The passage as the model was given it.
    pub quote: String,
}
