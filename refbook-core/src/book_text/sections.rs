//! Sections: where the text's own headings say a part begins. Markdown `#` headings;
//! in plain text, lines such as `第三回 …`, `第十二章`, `卷一`, `CHAPTER IV`,
//! `Chapter 12. The Ball`, `ACT II`, `SCENE 3`. Text before the first heading (a title
//! page, a preface) is a section of its own when it holds anything.

use std::sync::OnceLock;

use regex::Regex;

use crate::domain::{TextFormat, TextSection};

/// The longest line read as a heading, in characters (a heading is short; a sentence
/// that happens to start with "Chapter" is not one).
const MAX_HEADING_CHARS: usize = 60;

fn plain_heading() -> Option<&'static Regex> {
    static HEADING: OnceLock<Option<Regex>> = OnceLock::new();
    HEADING
        .get_or_init(|| {
            Regex::new(concat!(
            r"^(?:",
            r"第[一二三四五六七八九十百千零〇两\d０-９]+[回章节節篇卷部幕场]",
            r"|卷[一二三四五六七八九十百千零〇\d]+",
            r"|(?i:(?:chapter|book|part)\s+(?:\d+|[ivxlcdm]+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|the\s+(?:first|second|third|last)))\b",
            r"|(?:ACT|Act|SCENE|Scene)\s+(?:\d+|[IVXLCDM]+|[ivxlcdm]+)\b",
            r")",
            ))
            .ok()
        })
        .as_ref()
}

/// The heading a line is, if it is one: its title.
fn heading(line: &str, format: TextFormat) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.chars().count() > MAX_HEADING_CHARS {
        return None;
    }
    if format == TextFormat::Markdown {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        let rest = &line[hashes..];
        if (1..=6).contains(&hashes) && rest.starts_with(' ') {
            let title = rest.trim().trim_end_matches('#').trim();
            return (!title.is_empty()).then(|| title.to_owned());
        }
    }
    plain_heading()
        .is_some_and(|pattern| pattern.is_match(line))
        .then(|| line.trim_start_matches('#').trim().to_owned())
}

/// The sections of `text` (as characters), in reading order; at least one.
pub fn sections(text: &[char], format: TextFormat) -> Vec<TextSection> {
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .iter()
            .position(|c| *c == '\n')
            .map_or(text.len(), |at| line_start + at);
        let line: String = text[line_start..line_end].iter().collect();
        if let Some(title) = heading(&line, format) {
            starts.push((line_start, title));
        }
        line_start = line_end + 1;
    }
    let first = starts.first().map_or(text.len(), |(at, _)| *at);
    if first > 0 && text[..first].iter().any(|c| !c.is_whitespace()) || starts.is_empty() {
        starts.insert(0, (0, String::new()));
    } else if let Some(head) = starts.first_mut() {
        head.0 = 0; // leading blank lines belong to the first section
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|(at, _)| *at)
        .chain([text.len()])
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .enumerate()
        .map(|(index, ((start, title), end))| TextSection {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            title,
            start,
            end,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(text: &str, format: TextFormat) -> Vec<(String, usize, usize)> {
        let chars: Vec<char> = text.chars().collect();
        sections(&chars, format)
            .into_iter()
            .map(|s| (s.title, s.start, s.end))
            .collect()
    }

    #[test]
    fn chinese_chapters_with_a_preface() {
        let text = "红楼梦\n\n第一回 甄士隐梦幻识通灵\n正文。\n第二回　贾夫人仙逝扬州城\n正文二。";
        let found = titles(text, TextFormat::Plain);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], ("".to_owned(), 0, 5));
        assert_eq!(found[1].0, "第一回 甄士隐梦幻识通灵");
        assert_eq!(found[2].0, "第二回　贾夫人仙逝扬州城");
        assert_eq!(found[2].2, text.chars().count());
        assert_eq!(found[1].2, found[2].1);
    }

    #[test]
    fn english_chapters_acts_and_scenes() {
        let text = "CHAPTER I.\nIt is a truth.\nPart of the reason.\n\nChapter 2\nMore.\nBOOK ONE\nACT II\nSCENE 3. A room.\nChapters of life are long sentences that start like headings but go on and on and on.";
        let found: Vec<String> = titles(text, TextFormat::Plain)
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(
            found,
            [
                "CHAPTER I.",
                "Chapter 2",
                "BOOK ONE",
                "ACT II",
                "SCENE 3. A room."
            ]
        );
    }

    #[test]
    fn markdown_headings_and_no_headings() {
        let found = titles(
            "# Hamlet\n\n## Act 1\ntext\n#not a heading\n",
            TextFormat::Markdown,
        );
        let names: Vec<&str> = found.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["Hamlet", "Act 1"]);
        assert_eq!(found[0].1, 0);
        let whole = titles("只是一段话。", TextFormat::Plain);
        assert_eq!(whole, [("".to_owned(), 0, 6)]);
    }
}
