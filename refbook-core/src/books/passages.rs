//! Searching a book's text for a question: the passages of the text the asker sees, within
//! what they have read (a hard limit: nothing past their progress is ever returned), and
//! — when the question names sections ("第三回", "Act II, scene 1") — from those sections:
//! their best matches first, then passages spread over the rest of each section so a
//! "summarise chapter 3" sees all of it.

use std::ops::Range;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::texts::{BookTexts, LoadedText};
use crate::book_text::{named_sections, rank, Hit, MIN_KNOWN_SHARE};
use crate::domain::{Isbn, ReadingPoint, SectionRef, UserId};
use crate::error::Result;

/// The most passages one search returns.
pub const MAX_PASSAGES: usize = 20;

/// The fewest passages a question naming sections gets (more of the section is wanted
/// than for a question about one moment).
pub const SECTION_PASSAGES: usize = 8;

/// A passage of a book's text found by a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Where it is.
    pub section: SectionRef,
    /// Its start in the book's text, in characters.
    pub start: usize,
    /// Its end (exclusive), in characters.
    pub end: usize,
    /// The passage.
    pub text: String,
    /// How well it matches (higher is better; comparable within one search only).
    pub score: f32,
}

/// A search of a book's text.
#[derive(Debug, Clone, Copy)]
pub struct PassageQuery<'a> {
    /// The book.
    pub isbn: &'a Isbn,
    /// Who asks (their own copy and their progress apply); `None`: the library's text, whole.
    pub reader: Option<UserId>,
    /// What to rank passages by (a question, with the one before it for a follow-up).
    pub query: &'a str,
    /// The question itself, read for the sections it names.
    pub question: &'a str,
    /// The most passages wanted (at most [`MAX_PASSAGES`]).
    pub limit: usize,
    /// Search the whole book, past the reader's progress (`?all=true`).
    pub whole_book: bool,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The passages, best first (for a question naming sections: in reading order).
    pub passages: Vec<Passage>,
    /// How far the reader has read, when they set a mark short of the end (the search
    /// went no further).
    pub progress: Option<ReadingPoint>,
    /// The sections the question names that the reader has read (or begun).
    pub named: Vec<SectionRef>,
    /// The sections the question names that lie past the reader's progress.
    pub unread: Vec<SectionRef>,
}

impl BookTexts {
    /// The passages `query` finds in the text the reader sees (see
    /// [`seen_by`](Self::seen_by)); `None` when the book has no text.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn find(&self, query: PassageQuery<'_>) -> Result<Option<Found>> {
        let Some(text) = self.seen_by(query.isbn, query.reader).await? else {
            return Ok(None);
        };
        let loaded = self.load(&text).await?;
        let progress = match query.reader {
            Some(reader) if !query.whole_book => self.read_so_far(&text, reader).await?,
            _ => None,
        };
        let readable = progress.as_ref().map_or(loaded.chunks.len(), |point| {
            loaded.chunks.partition_point(|c| c.start < point.position)
        });
        let vector = match &loaded.vectors {
            Some(_) => self.question_vector(query.query).await,
            None => None,
        };
        let meaning = loaded.vectors.as_ref().zip(vector.as_deref());
        let limit = query.limit.min(MAX_PASSAGES);
        let mut found = Found {
            passages: Vec::new(),
            progress,
            named: Vec::new(),
            unread: Vec::new(),
        };
        let named = named_sections(query.question, &loaded.sections);
        let hits = if named.is_empty() {
            rank(&loaded.index, meaning, query.query, limit, 0..readable)
        } else {
            let mut spans = Vec::new();
            for sections in named {
                let chunks = chunk_span(&loaded, &sections);
                let head = section_ref(&loaded, sections.start);
                if chunks.start >= readable {
                    found.unread.push(head);
                } else {
                    found.named.push(head);
                    spans.push(chunks.start..chunks.end.min(readable));
                }
            }
            let wanted = limit.clamp(SECTION_PASSAGES, MAX_PASSAGES);
            let share = wanted / spans.len().max(1);
            let mut hits: Vec<Hit> = spans
                .into_iter()
                .flat_map(|span| from_section(&loaded, meaning, query.query, span, share.max(1)))
                .collect();
            hits.sort_by_key(|hit| hit.chunk);
            hits
        };
        let position = found.progress.as_ref().map(|p| p.position);
        found.passages = hits
            .into_iter()
            .filter_map(|hit| passage(&loaded, hit, position))
            .collect();
        Ok(Some(found))
    }

    /// The passages of the text `reader` sees (within their progress) that best match
    /// `query`, best first, at most `limit` (and at most [`MAX_PASSAGES`]); `None` when
    /// the book has no text. See [`find`](Self::find).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn search(
        &self,
        isbn: &Isbn,
        reader: Option<UserId>,
        query: &str,
        limit: usize,
    ) -> Result<Option<Vec<Passage>>> {
        let found = self
            .find(PassageQuery {
                isbn,
                reader,
                query,
                question: query,
                limit,
                whole_book: false,
            })
            .await?;
        Ok(found.map(|found| found.passages))
    }

    /// The question's vector, when the embedder is loaded and reads the question well
    /// enough (otherwise the search is by keywords alone); starts loading the embedder
    /// when it is wanted and not loaded yet.
    async fn question_vector(&self, query: &str) -> Option<Vec<f32>> {
        let Some(embedder) = self.embedder.ready() else {
            self.warm_embedder();
            return None;
        };
        let query = query.to_owned();
        tokio::task::spawn_blocking(move || {
            if embedder.known_share(&query) < MIN_KNOWN_SHARE {
                return None;
            }
            embedder.embed(&[query.as_str()]).ok()?.into_iter().next()
        })
        .await
        .ok()
        .flatten()
    }

    /// Starts loading the embedder in the background (after a restart nothing else may
    /// need it: every text has its vectors), once at a time; searches meanwhile use
    /// keywords alone.
    fn warm_embedder(&self) {
        if self.embedder.id().is_none() || self.warming.swap(true, Ordering::SeqCst) {
            return;
        }
        let (source, warming) = (self.embedder.clone(), self.warming.clone());
        tokio::spawn(async move {
            source.get().await;
            warming.store(false, Ordering::SeqCst);
        });
    }
}

/// The chunks of the sections `sections` (chunks are in reading order, so they are one run).
fn chunk_span(loaded: &LoadedText, sections: &Range<usize>) -> Range<usize> {
    let in_or_after = |first: usize| {
        loaded
            .chunks
            .partition_point(|c| (c.section as usize) < first)
    };
    in_or_after(sections.start)..in_or_after(sections.end)
}

/// `count` passages of one section's chunks `span`: the best matches, then chunks spread
/// evenly over the rest of it.
fn from_section(
    loaded: &LoadedText,
    meaning: Option<(&crate::book_text::DenseIndex, &[f32])>,
    query: &str,
    span: Range<usize>,
    count: usize,
) -> Vec<Hit> {
    let best = (count / 2).max(1);
    let mut hits = rank(&loaded.index, meaning, query, best, span.clone());
    let rest = count.saturating_sub(hits.len());
    let free: Vec<usize> = span
        .filter(|chunk| hits.iter().all(|hit| hit.chunk != *chunk))
        .collect();
    let step = free.len().div_ceil(rest.max(1)).max(1);
    hits.extend(
        free.into_iter()
            .step_by(step)
            .take(rest)
            .map(|chunk| Hit { chunk, score: 0.0 }),
    );
    hits
}

fn section_ref(loaded: &LoadedText, index: usize) -> SectionRef {
    let title = loaded
        .sections
        .get(index)
        .map(|s| s.title.clone())
        .unwrap_or_default();
    SectionRef {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        title,
    }
}

/// The passage of a hit, cut at the reader's position when it runs past it.
fn passage(loaded: &LoadedText, hit: Hit, position: Option<usize>) -> Option<Passage> {
    let chunk = loaded.chunks.get(hit.chunk)?;
    let end = position.map_or(chunk.end, |at| chunk.end.min(at));
    if end <= chunk.start {
        return None;
    }
    let text = if end < chunk.end {
        let read: String = chunk.text.chars().take(end - chunk.start).collect();
        if read.trim().is_empty() {
            return None;
        }
        read
    } else {
        chunk.text.clone()
    };
    Some(Passage {
        section: section_ref(loaded, chunk.section as usize),
        start: chunk.start,
        end,
        text,
        score: hit.score,
    })
}
