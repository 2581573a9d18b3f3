//! Chunks: a section cut into pieces of a few sentences — about [`CJK_CHUNK_CHARS`]
//! characters of Chinese or [`LATIN_CHUNK_CHARS`] of a Latin-script text — at sentence
//! ends (`。！？.!?`, with any closing quote) and line breaks, never across the section.
//! Each chunk after the first begins with the last sentence of the one before (when that
//! sentence is short), so a passage cut at a boundary is still found whole.

use crate::domain::{TextChunk, TextSection};

/// A chunk's size in a mostly Chinese (or Japanese) section, in characters.
pub const CJK_CHUNK_CHARS: usize = 300;

/// A chunk's size in a Latin-script section, in characters.
pub const LATIN_CHUNK_CHARS: usize = 800;

/// Whether `c` is a CJK ideograph (or kana): a character that is a word of its own.
pub(super) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{20000}'..='\u{2ebef}')
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '!' | '?' | '.' | '；' | '…' | '\n')
}

fn closes_quote(c: char) -> bool {
    matches!(c, '”' | '’' | '」' | '』' | '"' | '\'' | ')' | '）' | '》')
}

/// The sentences of `text[start..end]` as `(start, end)` offsets, whitespace-only ones
/// left out.
fn sentences(text: &[char], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = start;
    let mut at = start;
    while at < end {
        if ends_sentence(text[at]) {
            let mut to = at + 1;
            while to < end
                && (closes_quote(text[to]) || ends_sentence(text[to]) && text[to] != '\n')
            {
                to += 1;
            }
            out.push((from, to));
            from = to;
            at = to;
        } else {
            at += 1;
        }
    }
    if from < end {
        out.push((from, end));
    }
    out.retain(|(s, e)| text[*s..*e].iter().any(|c| !c.is_whitespace()));
    out
}

/// `(start, end)` without the whitespace at either end.
fn trimmed(text: &[char], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && text[start].is_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// The target size of chunks of this section: Chinese-sized when at least a third of its
/// letters are CJK.
fn target_size(text: &[char]) -> usize {
    let letters = text.iter().filter(|c| c.is_alphanumeric()).count().max(1);
    let cjk = text.iter().filter(|c| is_cjk(**c)).count();
    if cjk * 3 >= letters {
        CJK_CHUNK_CHARS
    } else {
        LATIN_CHUNK_CHARS
    }
}

/// The chunks of one section of `text`.
pub fn chunk_section(text: &[char], section: &TextSection) -> Vec<TextChunk> {
    let target = target_size(&text[section.start..section.end]);
    // Sentences longer than the target are cut at the target (at a space when there is one).
    let mut pieces = Vec::new();
    for (mut start, end) in sentences(text, section.start, section.end) {
        while end - start > target {
            let window = &text[start..start + target];
            let cut = window
                .iter()
                .rposition(|c| c.is_whitespace())
                .filter(|at| *at > target / 2)
                .map_or(start + target, |at| start + at + 1);
            pieces.push((start, cut));
            start = cut;
        }
        pieces.push((start, end));
    }
    let mut chunks = Vec::new();
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        while last + 1 < pieces.len() && pieces[last + 1].1 - pieces[first].0 <= target {
            last += 1;
        }
        let (start, end) = trimmed(text, pieces[first].0, pieces[last].1);
        if start < end {
            chunks.push(TextChunk {
                section: section.index,
                start,
                end,
                text: text[start..end].iter().collect(),
            });
        }
        if last + 1 == pieces.len() {
            break;
        }
        // Overlap: the next chunk starts again at this one's last sentence when it is short.
        let (last_start, last_end) = pieces[last];
        first = if last > first && last_end - last_start <= target / 2 {
            last
        } else {
            last + 1
        };
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> Vec<TextChunk> {
        let chars: Vec<char> = text.chars().collect();
        let section = TextSection {
            index: 0,
            title: String::new(),
            start: 0,
            end: chars.len(),
        };
        chunk_section(&chars, &section)
    }

    #[test]
    fn sentences_end_at_stops_and_closing_quotes() {
        let chars: Vec<char> = "他说：“走吧。”她笑了！\n好。".chars().collect();
        let found: Vec<String> = sentences(&chars, 0, chars.len())
            .into_iter()
            .map(|(s, e)| chars[s..e].iter().collect())
            .collect();
        assert_eq!(found, ["他说：“走吧。”", "她笑了！", "好。"]);
    }

    #[test]
    fn chinese_chunks_are_about_300_characters_and_overlap_by_a_sentence() {
        let sentence = "宝玉听了，便忙忙地走到潇湘馆来看黛玉。"; // 19 characters
        let text = sentence.repeat(60);
        let chunks = chunk(&text);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        for pair in chunks.windows(2) {
            let size = pair[0].end - pair[0].start;
            assert!((250..=CJK_CHUNK_CHARS).contains(&size), "{size}");
            assert_eq!(pair[1].start, pair[0].end - 19, "one sentence of overlap");
        }
        let chars: Vec<char> = text.chars().collect();
        for c in &chunks {
            assert_eq!(c.text, chars[c.start..c.end].iter().collect::<String>());
        }
        assert_eq!(chunks.last().map(|c| c.end), Some(chars.len()));
    }

    #[test]
    fn latin_chunks_are_larger_and_long_sentences_are_cut() {
        let text = "It is a truth universally acknowledged. ".repeat(60);
        let chunks = chunk(&text);
        assert!(chunks.iter().all(|c| c.end - c.start <= LATIN_CHUNK_CHARS));
        assert!(chunks[0].end - chunks[0].start > 600);
        let run_on = "word ".repeat(400);
        let cut = chunk(&run_on);
        assert!(cut.len() >= 3 && cut.iter().all(|c| c.end - c.start <= LATIN_CHUNK_CHARS));
    }
}
