//! A book's own text, prepared for reading and search: decoded (UTF-8, or GB18030/GBK;
//! an EPUB's chapters read from its spine),
//! normalised, cut into sections (chapters, acts, headings) and chunks (a few sentences,
//! never across a section), and indexed for keyword search (BM25 over words and, for
//! Chinese, single characters and character pairs). Pure functions: storing the result
//! and serving searches is [`BookTexts`](crate::books::BookTexts)'.
//!
//! Positions are character offsets (not bytes) into the normalised text; they never change
//! meaning once a text is stored.

mod chunks;
mod decode;
mod dense;
mod epub;
mod fusion;
mod index;
mod numbers;
mod section_names;
mod sections;
mod terms;

pub use chunks::{chunk_section, CJK_CHUNK_CHARS, LATIN_CHUNK_CHARS};
pub use decode::{decode, normalise};
pub use dense::{vector_bytes, vector_from_bytes, DenseIndex};
pub use epub::{
    read_epub, Chapter, MAX_ENTRIES as EPUB_MAX_ENTRIES, MAX_UNPACKED as EPUB_MAX_UNPACKED,
};
pub use fusion::{fuse, rank, DENSE_WEIGHT, FUSION_DEPTH, MIN_KNOWN_SHARE, RRF_K};
pub use index::{Bm25Index, Hit};
pub use section_names::named_sections;
pub use sections::sections;
pub use terms::{fold_script, terms};

use crate::domain::{TextChunk, TextFormat, TextSection};
use crate::error::{Error, Result};

/// A text ready to store: the normalised text, its sections and its chunks.
#[derive(Debug, Clone)]
pub struct PreparedText {
    /// The normalised text.
    pub text: String,
    /// Its length in characters.
    pub chars: usize,
    /// Its sections, in reading order (at least one).
    pub sections: Vec<TextSection>,
    /// Its chunks, in reading order.
    pub chunks: Vec<TextChunk>,
}

/// Decodes, normalises and cuts a file of `format`.
///
/// # Errors
///
/// `INVALID_PARAMS` (field `file`) for bytes that are neither UTF-8 nor GB18030, an EPUB
/// that cannot be read (see [`read_epub`]), or a text with nothing but whitespace.
pub fn prepare(bytes: &[u8], format: TextFormat) -> Result<PreparedText> {
    if format == TextFormat::Epub {
        return prepare_chapters(read_epub(bytes)?);
    }
    cut(normalise(&decode(bytes)?), |chars| sections(chars, format))
}

/// `text` cut into the sections `sections_of` finds in it, and those into chunks.
fn cut(
    text: String,
    sections_of: impl FnOnce(&[char]) -> Vec<TextSection>,
) -> Result<PreparedText> {
    if text.trim().is_empty() {
        return Err(Error::invalid(
            "file",
            "文本是空的",
            "The text is empty (or only whitespace)",
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let sections = sections_of(&chars);
    let chunks = sections
        .iter()
        .flat_map(|section| chunk_section(&chars, section))
        .collect();
    Ok(PreparedText {
        chars: chars.len(),
        text,
        sections,
        chunks,
    })
}

/// An EPUB's chapters as one text: each chapter a section, in reading order.
fn prepare_chapters(chapters: Vec<epub::Chapter>) -> Result<PreparedText> {
    let mut text = String::new();
    let mut sections = Vec::new();
    let mut at = 0;
    for (index, chapter) in chapters.into_iter().enumerate() {
        let body = normalise(&chapter.text);
        if !text.is_empty() {
            text.push_str("\n\n");
            at += 2;
        }
        let length = body.chars().count();
        sections.push(TextSection {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            title: normalise(&chapter.title),
            start: at,
            end: at + length,
        });
        text.push_str(&body);
        at += length;
    }
    cut(text, |_| sections)
}
