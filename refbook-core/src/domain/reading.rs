//! How far a reader has read a book: the mark they set, and where it falls in the text
//! they see.

use serde::Serialize;

use super::{SectionRef, TextSection};
use crate::timestamp::Timestamp;

/// Where a reader says they are, as they said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingMark {
    /// The last section read, by its index: everything up to its end is read.
    Section(u32),
    /// A position in the text, in characters: everything before it is read.
    Position(usize),
}

/// A reader's stored mark and when they set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredProgress {
    /// The mark.
    pub mark: ReadingMark,
    /// When it was set.
    pub updated_at: Timestamp,
}

/// A mark resolved against a text: how much of it the reader has read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadingPoint {
    /// The section the reader is in (the last section read, for a section mark).
    pub section: SectionRef,
    /// Everything before this character position is read.
    pub position: usize,
    /// The text's length in characters.
    pub chars: usize,
}

impl ReadingPoint {
    /// Where `mark` falls in a text of `chars` characters cut into `sections`; `None` when
    /// it is past the end (a section index beyond the last, a position beyond the end).
    pub fn resolve(mark: ReadingMark, sections: &[TextSection], chars: usize) -> Option<Self> {
        let (section, position) = match mark {
            ReadingMark::Section(index) => {
                let section = sections.get(index as usize)?;
                (section, section.end)
            }
            ReadingMark::Position(position) if position <= chars => {
                let within = position.saturating_sub(1);
                let section = sections
                    .iter()
                    .rev()
                    .find(|s| s.start <= within)
                    .or_else(|| sections.first())?;
                (section, position)
            }
            ReadingMark::Position(_) => return None,
        };
        Some(Self {
            section: SectionRef {
                index: section.index,
                title: section.title.clone(),
            },
            position,
            chars,
        })
    }

    /// The whole text read: its end, in its last section.
    pub fn whole(sections: &[TextSection], chars: usize) -> Self {
        let section = sections.last().map_or_else(
            || SectionRef {
                index: 0,
                title: String::new(),
            },
            |s| SectionRef {
                index: s.index,
                title: s.title.clone(),
            },
        );
        Self {
            section,
            position: chars,
            chars,
        }
    }

    /// Whether the reader has read the whole text.
    pub fn is_whole_book(&self) -> bool {
        self.position >= self.chars
    }

    /// The share of the text read, from 0 to 1 (three decimals).
    pub fn share(&self) -> f64 {
        if self.chars == 0 {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let share = self.position.min(self.chars) as f64 / self.chars as f64;
        (share * 1000.0).floor() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections() -> Vec<TextSection> {
        [("", 0, 10), ("第一回", 10, 50), ("第二回", 50, 100)]
            .into_iter()
            .enumerate()
            .map(|(index, (title, start, end))| TextSection {
                index: index as u32,
                title: title.to_owned(),
                start,
                end,
            })
            .collect()
    }

    #[test]
    fn a_section_mark_reads_to_its_end_and_a_position_names_its_section() {
        let point = ReadingPoint::resolve(ReadingMark::Section(1), &sections(), 100).unwrap();
        assert_eq!(
            (point.section.title.as_str(), point.position),
            ("第一回", 50)
        );
        assert!((point.share() - 0.5).abs() < 1e-9);
        let inside = ReadingPoint::resolve(ReadingMark::Position(60), &sections(), 100).unwrap();
        assert_eq!((inside.section.index, inside.position), (2, 60));
        let at_boundary = ReadingPoint::resolve(ReadingMark::Position(50), &sections(), 100);
        assert_eq!(
            at_boundary.unwrap().section.index,
            1,
            "the section just finished"
        );
        let start = ReadingPoint::resolve(ReadingMark::Position(0), &sections(), 100).unwrap();
        assert_eq!((start.section.index, start.position), (0, 0));
        let end = ReadingPoint::resolve(ReadingMark::Section(2), &sections(), 100).unwrap();
        assert!(end.is_whole_book());
    }

    #[test]
    fn past_the_end_is_refused() {
        assert!(ReadingPoint::resolve(ReadingMark::Section(3), &sections(), 100).is_none());
        assert!(ReadingPoint::resolve(ReadingMark::Position(101), &sections(), 100).is_none());
        assert!(ReadingPoint::resolve(ReadingMark::Position(100), &sections(), 100).is_some());
    }
}
