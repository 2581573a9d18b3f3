//! The events of a reply and the log that gives each a stable position.
//!
//! ## Positions
//!
//! A position (an SSE `id`, a polling `cursor`) is derived from the reply's text, not
//! from a counter, so it means the same live, rebuilt from the database after a restart
//! or after the in-memory buffer expired, and on any instance:
//!
//! - the start event is position 1, and the sources of a grounded reply (right after it)
//!   position 2;
//! - a reasoning or content event ends at `B + R + C`, where `B` is the position of the
//!   start (1), or of the sources when there are some (2), and `R` and `C` are the bytes
//!   of reasoning and answer produced up to and including it;
//! - the final chunk is the last position + 1, and an error event after it + 1 more.
//!
//! Reading after position `p` yields exactly the text after `p` bytes, even when the events
//! are grouped differently (a rebuilt reply holds its text as one event): a text event is
//! cut where `p` falls inside it. Models send their reasoning before their answer; a
//! reasoning piece arriving after the answer began is kept and counted, but a reply rebuilt
//! from the database then places it before the answer.

use std::sync::Arc;

use crate::chat::{FinishReason, MessageStatus, TokenUsage};
use crate::domain::Source;

/// One event of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    /// The reply began (`delta: {"role": "assistant", "content": ""}`).
    Start,
    /// The passages of the book's text the reply was given, numbered as it cites them
    /// (right after the start, only for a grounded reply).
    Sources(Arc<[Source]>),
    /// Reasoning text.
    Reasoning(Arc<str>),
    /// Answer text.
    Content(Arc<str>),
    /// The reply ended and was stored: why, with what status, and the usage.
    Finish {
        /// Why it ended.
        reason: FinishReason,
        /// The stored status.
        status: MessageStatus,
        /// Token counts.
        usage: TokenUsage,
        /// The sources the answer cites (`[n]` in its text); `None` for a reply given no
        /// sources.
        citations: Option<Arc<[u32]>>,
    },
    /// Something failed after the reply began (the model, or storing the reply).
    Error {
        /// The contract's error code (`MODEL_ERROR`, `SERVER_ERROR`).
        code: &'static str,
        /// A message for people.
        message: Arc<str>,
    },
}

/// What a grounded reply carries beside its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    /// The passages of the book's text it was given (`None`: it was given none).
    pub sources: Option<Arc<[Source]>>,
    /// The ones its answer cites, once it ended.
    pub citations: Option<Arc<[u32]>>,
}

/// An event with its position.
pub type Positioned = (usize, ReplyEvent);

/// The most text one read hands out of a single event: a reply rebuilt from the database
/// holds its text as one event, and a reader should not copy megabytes at once. A longer
/// event is handed out in pieces, each at the position where it ends.
pub(crate) const MAX_PIECE: usize = 16 * 1024;

/// The append-only events of one reply with their positions.
#[derive(Debug, Default)]
pub(crate) struct ReplyLog {
    entries: Vec<Positioned>,
    /// Bytes of reasoning and of answer so far.
    reasoning_len: usize,
    content_len: usize,
    /// The position text counts from: the start's, or the sources' after it.
    text_base: usize,
}

impl ReplyLog {
    /// The position of the last event (0 when empty).
    pub(crate) fn last_position(&self) -> usize {
        self.entries.last().map_or(0, |(at, _)| *at)
    }

    /// Appends an event; empty text is dropped (it would not move the position).
    pub(crate) fn push(&mut self, event: ReplyEvent) {
        let position = match &event {
            ReplyEvent::Reasoning(text) | ReplyEvent::Content(text) if text.is_empty() => return,
            ReplyEvent::Reasoning(text) => {
                self.reasoning_len += text.len();
                self.text_base.max(1) + self.reasoning_len + self.content_len
            }
            ReplyEvent::Content(text) => {
                self.content_len += text.len();
                self.text_base.max(1) + self.reasoning_len + self.content_len
            }
            ReplyEvent::Start | ReplyEvent::Sources(_) => {
                let position = self.last_position() + 1;
                if self.reasoning_len + self.content_len == 0 {
                    self.text_base = position;
                }
                position
            }
            ReplyEvent::Finish { .. } | ReplyEvent::Error { .. } => self.last_position() + 1,
        };
        self.entries.push((position, event));
    }

    /// Up to `max` events after position `cursor`; a text event that `cursor` falls inside
    /// is cut to the text after it, and a long one is handed out [`MAX_PIECE`] bytes at a
    /// time (the read then ends at that piece).
    pub(crate) fn after(&self, cursor: usize, max: usize) -> Vec<Positioned> {
        let first = self.entries.partition_point(|(at, _)| *at <= cursor);
        let mut out = Vec::with_capacity(max.min(self.entries.len() - first));
        for (at, event) in self.entries[first..].iter().take(max) {
            let (ReplyEvent::Reasoning(text) | ReplyEvent::Content(text)) = event else {
                out.push((*at, event.clone()));
                continue;
            };
            let start = at - text.len();
            let from = ceil_char_boundary(text, cursor.saturating_sub(start));
            let to = floor_char_boundary(text, from.saturating_add(MAX_PIECE));
            let to = if to <= from { text.len() } else { to };
            if from == 0 && to == text.len() {
                out.push((*at, event.clone()));
                continue;
            }
            if from < to {
                let piece: Arc<str> = Arc::from(&text[from..to]);
                let piece = match event {
                    ReplyEvent::Reasoning(_) => ReplyEvent::Reasoning(piece),
                    _ => ReplyEvent::Content(piece),
                };
                out.push((start + to, piece));
            }
            if to < text.len() {
                break;
            }
        }
        out
    }

    /// The sources of a grounded reply, and the citations once it ended.
    pub(crate) fn grounding(&self) -> Grounding {
        let sources = self.entries.iter().take(3).find_map(|(_, e)| match e {
            ReplyEvent::Sources(sources) => Some(sources.clone()),
            _ => None,
        });
        let citations = self
            .entries
            .iter()
            .rev()
            .take(3)
            .find_map(|(_, e)| match e {
                ReplyEvent::Finish { citations, .. } => citations.clone(),
                _ => None,
            });
        Grounding { sources, citations }
    }

    /// The reasoning and answer text so far.
    pub(crate) fn texts(&self) -> (String, String) {
        let (mut reasoning, mut content) = (String::new(), String::new());
        for (_, event) in &self.entries {
            match event {
                ReplyEvent::Reasoning(text) => reasoning.push_str(text),
                ReplyEvent::Content(text) => content.push_str(text),
                _ => {}
            }
        }
        (reasoning, content)
    }

    /// Bytes of text held (reasoning and answer).
    pub(crate) fn text_len(&self) -> usize {
        self.reasoning_len + self.content_len
    }

    /// Whether a final chunk or an error was logged.
    pub(crate) fn has_ending(&self) -> bool {
        self.entries
            .iter()
            .any(|(_, e)| matches!(e, ReplyEvent::Finish { .. } | ReplyEvent::Error { .. }))
    }
}

/// The smallest char boundary of `text` at or above `at` (at most its length).
fn ceil_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The largest char boundary of `text` at or below `at`.
pub(crate) fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(event: &ReplyEvent) -> &str {
        match event {
            ReplyEvent::Reasoning(t) | ReplyEvent::Content(t) => t,
            _ => "",
        }
    }

    fn live() -> ReplyLog {
        let mut log = ReplyLog::default();
        log.push(ReplyEvent::Start);
        for piece in ["想一", "想"] {
            log.push(ReplyEvent::Reasoning(piece.into()));
        }
        log.push(ReplyEvent::Content("".into()));
        for piece in ["作者", "是刘", "慈欣。"] {
            log.push(ReplyEvent::Content(piece.into()));
        }
        log.push(ReplyEvent::Finish {
            reason: FinishReason::Stop,
            status: MessageStatus::Complete,
            usage: TokenUsage::default(),
            citations: None,
        });
        log
    }

    fn rebuilt() -> ReplyLog {
        let mut log = ReplyLog::default();
        log.push(ReplyEvent::Start);
        log.push(ReplyEvent::Reasoning("想一想".into()));
        log.push(ReplyEvent::Content("作者是刘慈欣。".into()));
        log.push(ReplyEvent::Finish {
            reason: FinishReason::Stop,
            status: MessageStatus::Complete,
            usage: TokenUsage::default(),
            citations: None,
        });
        log
    }

    #[test]
    fn positions_count_bytes_and_empty_text_is_dropped() {
        let positions: Vec<usize> = live().after(0, 100).iter().map(|(at, _)| *at).collect();
        // start, 想一 (6 bytes), 想 (3), 作者 (6), 是刘 (6), 慈欣。 (9), finish
        assert_eq!(positions, [1, 7, 10, 16, 22, 31, 32]);
    }

    #[test]
    fn live_and_rebuilt_logs_agree_after_every_position() {
        let (live, rebuilt) = (live(), rebuilt());
        assert_eq!(live.last_position(), rebuilt.last_position());
        for cursor in 0..=live.last_position() + 1 {
            let rest = |log: &ReplyLog| {
                let events = log.after(cursor, 100);
                let joined: String = events.iter().map(|(_, e)| text(e)).collect();
                let last = events.last().map(|(at, _)| *at);
                (joined, last)
            };
            assert_eq!(rest(&live), rest(&rebuilt), "after {cursor}");
        }
        let (reasoning, content) = live.texts();
        assert_eq!(
            (reasoning.as_str(), content.as_str()),
            ("想一想", "作者是刘慈欣。")
        );
    }

    #[test]
    fn a_long_event_is_read_in_bounded_pieces_at_valid_positions() {
        let mut log = ReplyLog::default();
        log.push(ReplyEvent::Start);
        let long = "字".repeat(20_000); // 60,000 bytes
        log.push(ReplyEvent::Content(long.as_str().into()));
        log.push(ReplyEvent::Finish {
            reason: FinishReason::Stop,
            status: MessageStatus::Complete,
            usage: TokenUsage::default(),
            citations: None,
        });
        let (mut cursor, mut read, mut reads) = (0, String::new(), 0);
        loop {
            let batch = log.after(cursor, 100);
            let Some((last, _)) = batch.last() else { break };
            for (_, event) in &batch {
                assert!(text(event).len() <= MAX_PIECE);
                read.push_str(text(event));
            }
            cursor = *last;
            reads += 1;
        }
        assert_eq!(read, long);
        assert_eq!(
            reads, 4,
            "start and a piece, two pieces, the rest and the end"
        );
        assert_eq!(cursor, log.last_position());
    }

    #[test]
    fn a_cursor_inside_a_character_resumes_at_the_next_one() {
        let events = rebuilt().after(11, 100);
        assert_eq!(text(&events[0].1), "者是刘慈欣。");
        assert!(rebuilt().after(32, 100).is_empty());
        assert_eq!(live().after(0, 2).len(), 2);
    }
}
