//! Grounding: the passages of the book's own text that a question is about, numbered in
//! the system prompt with the instruction to answer from them and cite them as `[n]` —
//! or, for a book with no text, a line saying the model has none to quote.

use std::fmt::Write;

use super::prompt::is_chinese;
use super::tokens::{estimate_tokens, MESSAGE_OVERHEAD};
use super::Role;
use crate::books::{Found, Passage};
use crate::domain::{SectionRef, Source};
use crate::guide::GuideView;

/// Passages looked up for one question.
pub(crate) const PASSAGES_PER_QUESTION: usize = 5;

/// The longest passage quoted in the prompt, in characters (a chunk is about 300 Chinese
/// or 800 Latin characters, so this only trims the unusual one).
const MAX_PASSAGE_CHARS: usize = 1200;

/// What to search the book for: the question, with the reader's previous question before
/// it, so that a follow-up ("and then what did he do?") finds its subject.
pub(crate) fn search_query(history: &[(Role, String)], question: &str) -> String {
    match history.iter().rev().find(|(role, _)| *role == Role::User) {
        Some((_, previous)) => format!("{previous}\n{question}"),
        None => question.to_owned(),
    }
}

/// Adds the grounding to `system`: where the reader is in the book (and not to reveal
/// what follows), the sections the question names, the passages (in the order found, as
/// many as fit `allowance` estimated tokens) with how to use them — or, `found` being
/// `None`, that the book's text is not available. Returns the passages put in, numbered
/// from 1 in that order.
pub(crate) fn ground(
    system: &mut String,
    found: Option<Found>,
    question: &str,
    allowance: i64,
) -> Vec<Passage> {
    let chinese = is_chinese(question);
    let Some(found) = found else {
        system.push_str(if chinese {
            "\n没有这本书的原文可供查阅：只能依据书目信息和你已知的内容回答，不要假装引用原文。\n"
        } else {
            "\nYou do not have the book's text: answer from the facts above and what you know, \
             and do not pretend to quote it.\n"
        });
        return Vec::new();
    };
    reading_position(system, &found, chinese);
    let mut kept = Vec::new();
    let mut room = allowance;
    for passage in found.passages {
        let text = clip(&passage.text);
        let cost = estimate_tokens(&text) + MESSAGE_OVERHEAD;
        if cost > room {
            continue;
        }
        room -= cost;
        kept.push(Passage { text, ..passage });
    }
    if kept.is_empty() {
        system.push_str(if chinese {
            "\n书中没有找到与这个问题相关的段落；如果书目信息也回答不了，就直说书里没有找到。\n"
        } else {
            "\nNo passage of the book's text matches this question; if the facts above do not \
             answer it either, say that the book does not seem to say.\n"
        });
        return kept;
    }
    system.push_str(if chinese {
        "\n书中与问题相关的段落：\n"
    } else {
        "\nPassages from the book's text:\n"
    });
    for (n, passage) in kept.iter().enumerate() {
        let title = &passage.section.title;
        if title.is_empty() {
            let _ = writeln!(system, "[{}] {}", n + 1, passage.text);
        } else {
            // A section's first passage starts with its heading: said once.
            let (first, rest) = passage.text.split_once('\n').unwrap_or((&passage.text, ""));
            let text = if first.trim_start_matches('#').trim() == title {
                rest.trim_start()
            } else {
                passage.text.as_str()
            };
            let _ = writeln!(system, "[{}] （{}）{}", n + 1, title, text);
        }
    }
    system.push_str(if chinese {
        "请依据这些段落回答，在用到某段的句子后标注它的编号，如 [1]；段落里没有答案时就直说。\n"
    } else {
        "Answer from these passages and put the number of each passage you use after the \
         sentence that uses it, like [1]; if they do not contain the answer, say so.\n"
    });
    kept
}

/// Adds the book's guide (its summary and the sections' the question needs) to `system`;
/// returns the estimated tokens it took.
pub(crate) fn add_guide(system: &mut String, guide: Option<&GuideView>, question: &str) -> i64 {
    let Some(guide) = guide else {
        return 0;
    };
    let chinese = is_chinese(question);
    let before = system.len();
    system.push_str(if chinese {
        "\n这本书的导读（依据原文整理的概要，用来把握全书和各部分；回答时引用的仍是下面的段落）：\n"
    } else {
        "\nThe book's guide (summaries made from its text, for the whole and its parts; cite \
         the passages below, not the guide):\n"
    });
    if let Some(book) = &guide.book {
        let _ = writeln!(
            system,
            "{}{}",
            if chinese { "全书：" } else { "The book: " },
            book.summary
        );
    }
    for section in &guide.sections {
        let name = section_name(
            &SectionRef {
                index: section.index,
                title: section.title.clone(),
            },
            chinese,
        );
        let _ = writeln!(
            system,
            "{name}{}{}",
            if chinese { "：" } else { ": " },
            section.summary
        );
    }
    estimate_tokens(&system[before..])
}

/// A section as the prompt names it.
fn section_name(section: &SectionRef, chinese: bool) -> String {
    match (section.title.is_empty(), chinese) {
        (false, true) => format!("「{}」", section.title),
        (false, false) => format!("\"{}\"", section.title),
        (true, true) => format!("第 {} 部分", section.index + 1),
        (true, false) => format!("part {}", section.index + 1),
    }
}

fn section_names(sections: &[SectionRef], chinese: bool) -> String {
    let names: Vec<String> = sections.iter().map(|s| section_name(s, chinese)).collect();
    names.join(if chinese { "、" } else { ", " })
}

/// Where the reader is and what not to reveal; which sections the question is about.
fn reading_position(system: &mut String, found: &Found, chinese: bool) {
    if let Some(point) = &found.progress {
        let section = section_name(&point.section, chinese);
        let percent = (point.share() * 100.0).round();
        let _ = if chinese {
            writeln!(
                system,
                "\n读者正在读这本书，读到了{section}（约全书的 {percent}%）。只谈这之前的内容：不要透露之后的情节、人物的命运或结局，也不要凭你自己对这本书的记忆透露；被问到后面的内容时，就说等读到那里再聊。"
            )
        } else {
            writeln!(
                system,
                "\nThe reader is reading this book and has reached {section} (about {percent}% of it). \
                 Talk only about what comes before that point: do not reveal later events, what \
                 becomes of anyone, or the ending — not from the passages and not from your own \
                 memory of the book; if asked about what comes later, say you can talk about it \
                 once they get there."
            )
        };
    }
    if !found.named.is_empty() {
        let names = section_names(&found.named, chinese);
        let _ = if chinese {
            writeln!(system, "这个问题问的是{names}；下面的段落出自那里。")
        } else {
            writeln!(
                system,
                "The question is about {names}; the passages below come from it."
            )
        };
    }
    if !found.unread.is_empty() {
        let names = section_names(&found.unread, chinese);
        let _ = if chinese {
            writeln!(
                system,
                "读者问到的{names}在他还没读到的地方：不要透露其中的任何内容，告诉他读到那里再聊。"
            )
        } else {
            writeln!(
                system,
                "The reader asks about {names}, which they have not read yet: reveal nothing of \
                 it, and tell them you can talk about it once they get there."
            )
        };
    }
}

/// The passages put in a prompt as the reply's numbered sources.
pub(crate) fn sources_of(passages: &[Passage]) -> Vec<Source> {
    passages
        .iter()
        .zip(1..)
        .map(|(passage, n)| Source {
            n,
            section: passage.section.clone(),
            start: passage.start,
            end: passage.end,
            quote: passage.text.clone(),
        })
        .collect()
}

/// The source numbers `text` cites (`[2]`, `［2］`, `[1, 3]`, `[1][3]`), among `1..=count`,
/// ascending, each once.
pub fn citations_in(text: &str, count: usize) -> Vec<u32> {
    let mut found = std::collections::BTreeSet::new();
    if count == 0 {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        if !matches!(chars[at], '[' | '［' | '【') {
            at += 1;
            continue;
        }
        let close = chars[at + 1..]
            .iter()
            .take(24)
            .position(|c| matches!(c, ']' | '］' | '】'));
        let Some(close) = close else {
            at += 1;
            continue;
        };
        let inside: String = chars[at + 1..at + 1 + close].iter().collect();
        let numbers: Vec<Option<u32>> = inside
            .split([',', '，', '、', ' '])
            .filter(|part| !part.trim().is_empty())
            .map(|part| part.trim().parse::<u32>().ok())
            .collect();
        if !numbers.is_empty() && numbers.iter().all(Option::is_some) {
            for n in numbers.into_iter().flatten() {
                if (1..=count).contains(&(n as usize)) {
                    found.insert(n);
                }
            }
        }
        at += close + 2;
    }
    found.into_iter().collect()
}

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_PASSAGE_CHARS {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(MAX_PASSAGE_CHARS).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::SectionRef;

    fn passage(title: &str, text: &str) -> Passage {
        Passage {
            section: SectionRef {
                index: 0,
                title: title.to_owned(),
            },
            start: 0,
            end: text.chars().count(),
            text: text.to_owned(),
            score: 1.0,
        }
    }

    fn found(passages: Vec<Passage>) -> Option<Found> {
        Some(Found {
            passages,
            progress: None,
            named: Vec::new(),
            unread: Vec::new(),
        })
    }

    #[test]
    fn passages_are_numbered_with_their_sections_within_the_allowance() {
        let mut system = String::from("你是图书管理员。");
        let kept = ground(
            &mut system,
            found(vec![
                passage("第二十七回", "第二十七回\n黛玉葬花。"),
                passage("", &"长".repeat(2000)),
                passage("第一回", "## 第一回\n甄士隐梦幻识通灵。"),
            ]),
            "黛玉在哪里葬花？",
            200,
        );
        assert_eq!(kept.len(), 2, "the long one does not fit");
        assert!(system.contains("[1] （第二十七回）黛玉葬花。"));
        assert!(system.contains("[2] （第一回）甄士隐梦幻识通灵。"));
        assert!(system.contains("[1]；"));
    }

    #[test]
    fn no_text_and_no_match_are_said() {
        let mut none = String::new();
        assert!(ground(&mut none, None, "Who is Darcy?", 500).is_empty());
        assert!(none.contains("do not have the book's text"));
        let mut unmatched = String::new();
        assert!(ground(&mut unmatched, found(Vec::new()), "谁？", 500).is_empty());
        assert!(unmatched.contains("没有找到"));
    }

    #[test]
    fn the_reader_s_place_and_the_sections_asked_about_are_said() {
        let section = |index: u32, title: &str| SectionRef {
            index,
            title: title.to_owned(),
        };
        let mut found = found(vec![passage("第三回", "黛玉进府。")]).unwrap();
        found.progress = Some(crate::domain::ReadingPoint {
            section: section(3, "第三回"),
            position: 450,
            chars: 1000,
        });
        found.named = vec![section(3, "第三回")];
        found.unread = vec![section(5, "第五回")];
        let mut system = String::new();
        ground(
            &mut system,
            Some(found.clone()),
            "第三回和第五回讲了什么",
            500,
        );
        assert!(
            system.contains("读到了「第三回」（约全书的 45%）"),
            "{system}"
        );
        assert!(system.contains("不要凭你自己对这本书的记忆透露"));
        assert!(system.contains("这个问题问的是「第三回」"));
        assert!(system.contains("读者问到的「第五回」在他还没读到的地方"));
        let mut english = String::new();
        ground(&mut english, Some(found), "What happens in chapter 5?", 500);
        assert!(
            english.contains("has reached \"第三回\" (about 45% of it)"),
            "{english}"
        );
        assert!(english.contains("not from your own memory of the book"));
    }

    #[test]
    fn citations_are_the_source_numbers_the_answer_uses() {
        assert_eq!(
            citations_in("葬花在沁芳闸[2]。又见[1][2]，另见［3］、[1, 4]。", 3),
            [1, 2, 3]
        );
        assert_eq!(citations_in("see [a] and [7] and [2", 3), Vec::<u32>::new());
        assert!(citations_in("[1]", 0).is_empty());
    }

    #[test]
    fn follow_ups_search_with_the_previous_question() {
        let history = vec![
            (Role::User, "Who is Mr Darcy?".to_owned()),
            (Role::Assistant, "A gentleman.".to_owned()),
        ];
        assert_eq!(
            search_query(&history, "And then what did he do?"),
            "Who is Mr Darcy?\nAnd then what did he do?"
        );
        assert_eq!(search_query(&[], "Q"), "Q");
    }
}
