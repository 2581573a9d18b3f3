//! Section questions: which sections of a text a question names, and how far each reaches.
//!
//! By number, in Chinese or English: `第三章`, `第5回`, `第二幕第一场`, `卷二`, `chapter 3`,
//! `Chapter IV`, `Act II, scene 1`, `book one`. A section's own heading says its kind and
//! number (`第二十七回 …`, `SCENE I. Elsinore.`); headings of one kind that carry no number
//! (`学而篇`, `为政篇`) are numbered in reading order. A scene or a numbered part named
//! without its act or book must be the only one of its number.
//!
//! By title: a Chinese title (or one half of a two-part 回目, or the last part of
//! `国风·周南·关雎`) that no other section shares, which the question contains — a title of
//! fewer than five characters only when quoted (`《关雎》`), called a section (`关雎这首诗`,
//! `三体游戏这一章`) or ending in one (`学而篇`), since a short title is often also a thing
//! in the book ("三体游戏是什么" is not about that chapter alone); a title in another
//! script only when the question quotes it (`"The Ball"`, `“The Ball”`). Sections with nothing but their heading (a book's
//! title, an act's heading) are never named by title. Titles and questions are compared
//! with traditional characters folded into simplified ones (`《關雎》` names 关雎).
//!
//! A named section reaches over the sections of lower rank after it: an act takes its
//! scenes, a 卷 its chapters.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::numbers::number;
use super::terms::fold_script;
use crate::domain::TextSection;

/// The most sections one question is taken to name.
const MAX_NAMED: usize = 4;

/// What kind of part a heading begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 卷, 部, book.
    Volume,
    /// 篇, part.
    Part,
    /// 幕, act.
    Act,
    /// 回, 章, chapter.
    Chapter,
    /// 场, scene.
    Scene,
    /// 节.
    Subsection,
}

impl Kind {
    /// Larger parts hold smaller ones.
    fn rank(self) -> u8 {
        match self {
            Self::Volume => 4,
            Self::Part => 3,
            Self::Act | Self::Chapter => 2,
            Self::Scene | Self::Subsection => 1,
        }
    }

    fn of_chinese(c: char) -> Option<Self> {
        Some(match c {
            '回' | '章' => Self::Chapter,
            '节' | '節' => Self::Subsection,
            '篇' => Self::Part,
            '卷' | '部' => Self::Volume,
            '幕' => Self::Act,
            '场' | '場' => Self::Scene,
            _ => return None,
        })
    }

    fn of_english(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "chapter" => Self::Chapter,
            "book" => Self::Volume,
            "part" => Self::Part,
            "act" => Self::Act,
            "scene" => Self::Scene,
            _ => return None,
        })
    }
}

const CHINESE_NUMBER: &str = "[0-9０-９一二三四五六七八九十百千零〇两]+";
const ENGLISH_NUMBER: &str = "[0-9]+|[ivxlcdm]+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth";
const KIND_CHARS: &str = "[回章节節篇卷部幕场場]";
const ENGLISH_KINDS: &str = "chapter|book|part|act|scene";

/// Numbered headings, anchored at a title's start (`kind`, `number`, `name` groups).
fn heading_patterns() -> Option<&'static [Regex; 3]> {
    static PATTERNS: OnceLock<Option<[Regex; 3]>> = OnceLock::new();
    PATTERNS
        .get_or_init(|| {
            let separators = r"[\s　:：.,，、\-–—]*";
            Some([
                Regex::new(&format!(
                    r"^第\s*(?P<number>{CHINESE_NUMBER})\s*(?P<kind>{KIND_CHARS}){separators}(?P<name>.*)$"
                ))
                .ok()?,
                Regex::new(&format!(
                    r"^(?P<kind>卷)\s*(?P<number>{CHINESE_NUMBER}){separators}(?P<name>.*)$"
                ))
                .ok()?,
                Regex::new(&format!(
                    r"(?i)^(?P<kind>{ENGLISH_KINDS})\s+(?P<number>{ENGLISH_NUMBER})\b{separators}(?P<name>.*)$"
                ))
                .ok()?,
            ])
        })
        .as_ref()
}

/// Section numbers named anywhere in a question (`kind`, `number` groups).
fn mention_patterns() -> Option<&'static [Regex; 3]> {
    static PATTERNS: OnceLock<Option<[Regex; 3]>> = OnceLock::new();
    PATTERNS
        .get_or_init(|| {
            Some([
                Regex::new(&format!(
                    r"第\s*(?P<number>{CHINESE_NUMBER})\s*(?P<kind>{KIND_CHARS})"
                ))
                .ok()?,
                Regex::new(&format!(r"(?P<kind>卷)(?P<number>{CHINESE_NUMBER})")).ok()?,
                Regex::new(&format!(
                    r"(?i)\b(?P<kind>{ENGLISH_KINDS})\s+(?P<number>{ENGLISH_NUMBER})\b"
                ))
                .ok()?,
            ])
        })
        .as_ref()
}

/// What a section's heading says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Label {
    kind: Option<Kind>,
    number: Option<u32>,
    /// The title without its numbering.
    name: String,
    /// Whether the section holds more than its heading.
    has_body: bool,
}

fn kind_of(text: &str) -> Option<Kind> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Kind::of_chinese(c),
        _ => Kind::of_english(text),
    }
}

fn label(section: &TextSection) -> Label {
    let title = section.title.trim();
    let title_chars = title.chars().count();
    let has_body = section.end.saturating_sub(section.start) > title_chars + 24;
    let numbered = heading_patterns().and_then(|patterns| {
        patterns.iter().find_map(|pattern| {
            let found = pattern.captures(title)?;
            Some(Label {
                kind: kind_of(found.name("kind")?.as_str()),
                number: number(found.name("number")?.as_str()),
                name: found.name("name")?.as_str().trim().to_owned(),
                has_body,
            })
        })
    });
    numbered.unwrap_or_else(|| Label {
        // `学而篇`: a kind without a number (numbered in reading order below).
        kind: title
            .chars()
            .last()
            .filter(|_| title_chars >= 2)
            .and_then(Kind::of_chinese)
            .filter(|kind| matches!(kind, Kind::Part | Kind::Chapter)),
        number: None,
        name: title.to_owned(),
        has_body,
    })
}

/// The labels of `sections`, headings of a kind that never carries a number numbered in
/// reading order.
fn labels(sections: &[TextSection]) -> Vec<Label> {
    let mut labels: Vec<Label> = sections.iter().map(label).collect();
    let kinds: Vec<Kind> = labels.iter().filter_map(|l| l.kind).collect();
    for kind in kinds {
        let numbered = labels
            .iter()
            .any(|l| l.kind == Some(kind) && l.number.is_some());
        if numbered {
            continue;
        }
        for (next, l) in (1..).zip(labels.iter_mut().filter(|l| l.kind == Some(kind))) {
            l.number = Some(next);
        }
    }
    labels
}

/// A section number named in a question, with the larger part it was named in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mention {
    kind: Kind,
    number: u32,
    within: Option<(Kind, u32)>,
}

fn mentions(question: &str) -> Vec<Mention> {
    let Some(patterns) = mention_patterns() else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize, Kind, u32)> = patterns
        .iter()
        .flat_map(|pattern| pattern.captures_iter(question))
        .filter_map(|c| {
            let whole = c.get(0)?;
            let kind = kind_of(c.name("kind")?.as_str())?;
            let number = number(c.name("number")?.as_str())?;
            Some((whole.start(), whole.end(), kind, number))
        })
        .collect();
    found.sort_unstable_by_key(|m| m.0);
    let mut out: Vec<Mention> = Vec::new();
    for (at, (start, _, kind, number)) in found.iter().enumerate() {
        // `Act II, scene 1`, `第二幕第一场`: a smaller part right after a larger one.
        let within = at.checked_sub(1).and_then(|before| {
            let (_, end, outer, outer_number) = found[before];
            let gap = question.get(end..*start)?;
            let close = gap.chars().count() <= 3
                && gap
                    .chars()
                    .all(|c| c.is_whitespace() || matches!(c, ',' | '，' | '、' | '的' | '.'));
            (close && outer.rank() > kind.rank()).then_some((outer, outer_number))
        });
        if let (Some(outer), Some(last)) = (within, out.last()) {
            if last.kind == outer.0 && last.number == outer.1 && last.within.is_none() {
                out.pop();
            }
        }
        out.push(Mention {
            kind: *kind,
            number: *number,
            within,
        });
    }
    out
}

/// The section of larger rank each section is in (its act, its 卷).
fn enclosing(labels: &[Label], at: usize) -> Option<(Kind, u32)> {
    let rank = labels[at].kind?.rank();
    labels[..at]
        .iter()
        .rev()
        .filter_map(|l| Some((l.kind?, l.number?)))
        .find(|(kind, _)| kind.rank() > rank)
}

/// The sections `mention` names (by index).
fn resolve(labels: &[Label], mention: Mention) -> Vec<usize> {
    let candidates: Vec<usize> = (0..labels.len())
        .filter(|&at| {
            labels[at].kind == Some(mention.kind) && labels[at].number == Some(mention.number)
        })
        .filter(|&at| match mention.within {
            Some(outer) => enclosing(labels, at) == Some(outer),
            None => true,
        })
        .collect();
    let ambiguous = mention.within.is_none()
        && candidates.len() > 1
        && candidates.iter().any(|&at| enclosing(labels, at).is_some());
    if ambiguous {
        return Vec::new();
    }
    candidates.into_iter().take(1).collect()
}

/// Whether `c` is written in a CJK script.
fn is_cjk(c: char) -> bool {
    super::chunks::is_cjk(c)
}

/// The ways a section's title may be named in a question.
fn title_forms(label: &Label) -> Vec<String> {
    let name = fold_script(&label.name)
        .trim_matches(|c: char| {
            c.is_whitespace() || c.is_ascii_punctuation() || "。，、：；".contains(c)
        })
        .to_owned();
    let mut forms = vec![name.clone()];
    if name.chars().any(is_cjk) {
        forms.extend(
            name.split(|c: char| c.is_whitespace() || c == '　')
                .filter(|half| half.chars().count() >= 4)
                .map(str::to_owned),
        );
        if let Some(last) = name.rsplit('·').next() {
            forms.push(last.to_owned());
        }
    }
    forms.sort();
    forms.dedup();
    forms.retain(|form| form.chars().count() >= 2);
    forms
}

/// Words after a short title that say it is a section (`关雎这首诗`, `三体游戏这一章`).
const SECTION_WORDS: [&str; 8] = [
    "这一", "这首", "这篇", "这章", "这回", "一章", "一回", "一篇",
];

/// The shortest CJK title a question names without quoting it or saying it is a section.
const BARE_CJK_TITLE: usize = 5;

/// Whether `question` names `form`: a long CJK title by containing it, a short one when
/// quoted (`《关雎》`), followed by a word saying it is a section, or itself ending in one
/// (`学而篇`); a title in another script when quoted.
fn names_title(question: &str, lower_question: &str, form: &str) -> bool {
    let quoted = |text: &str, form: &str| {
        [
            ('"', '"'),
            ('“', '”'),
            ('\'', '\''),
            ('‘', '’'),
            ('《', '》'),
            ('「', '」'),
        ]
        .iter()
        .any(|(open, close)| text.contains(&format!("{open}{form}{close}")))
    };
    if !form.chars().any(is_cjk) {
        return quoted(lower_question, &form.to_lowercase());
    }
    if form.chars().count() >= BARE_CJK_TITLE
        || form.chars().last().and_then(Kind::of_chinese).is_some()
    {
        return question.contains(form);
    }
    quoted(question, form)
        || question.match_indices(form).any(|(at, _)| {
            let after = question[at + form.len()..].trim_start();
            SECTION_WORDS.iter().any(|word| after.starts_with(word))
        })
}

fn by_title(labels: &[Label], question: &str) -> Vec<usize> {
    let lower_question = question.to_lowercase();
    let forms: Vec<Vec<String>> = labels.iter().map(title_forms).collect();
    let mut named = Vec::new();
    for (at, label) in labels.iter().enumerate() {
        if !label.has_body {
            continue;
        }
        let hit = forms[at].iter().any(|form| {
            names_title(question, &lower_question, form)
                && forms
                    .iter()
                    .enumerate()
                    .all(|(other, theirs)| other == at || !theirs.contains(form))
        });
        if hit {
            named.push(at);
        }
    }
    named
}

/// How far the section at `at` reaches: itself and the sections of lower rank after it.
fn reach(labels: &[Label], at: usize) -> Range<usize> {
    let Some(rank) = labels[at].kind.map(Kind::rank) else {
        return at..at + 1;
    };
    let end = labels[at + 1..]
        .iter()
        .position(|l| l.kind.is_none_or(|kind| kind.rank() >= rank))
        .map_or(labels.len(), |after| at + 1 + after);
    at..end
}

/// The sections `question` names, as ranges of section indices in reading order (an act
/// with its scenes is one range); empty when it names none.
pub fn named_sections(question: &str, sections: &[TextSection]) -> Vec<Range<usize>> {
    if sections.len() < 2 {
        return Vec::new();
    }
    let labels = labels(sections);
    let mut named: Vec<usize> = mentions(question)
        .into_iter()
        .flat_map(|mention| resolve(&labels, mention))
        .collect();
    if named.is_empty() {
        named = by_title(&labels, &fold_script(question));
    }
    named.sort_unstable();
    named.dedup();
    named
        .into_iter()
        .take(MAX_NAMED)
        .map(|at| reach(&labels, at))
        .collect()
}

#[cfg(test)]
#[path = "section_names_tests.rs"]
mod tests;
