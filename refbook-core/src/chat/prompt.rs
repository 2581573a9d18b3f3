//! The prompt: a system prompt the server writes from the stored book and the persona,
//! then as much recent history as fits the budget, then the question.

use std::fmt::Write;

use super::tokens::{estimate_tokens, prefix_within, MESSAGE_OVERHEAD};
use super::{Message, MessageStatus, Persona, Role};
use crate::books::Book;
use crate::llm::PromptMessage;

/// The most of a book's texts put in the prompt, in characters.
const MAX_BOOK_TEXT: usize = 1500;

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_BOOK_TEXT {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(MAX_BOOK_TEXT).collect();
        clipped.push('…');
        clipped
    }
}

/// The language a question is written in, as far as the prompt cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tongue {
    Chinese,
    /// English, and any other language (the prompt is English; the model is told to
    /// answer in the reader's language).
    Other,
}

impl Tongue {
    /// Chinese when the question has any Han character and no Japanese kana.
    fn of(question: &str) -> Self {
        let han = question
            .chars()
            .any(|c| matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}'));
        let kana = question
            .chars()
            .any(|c| matches!(c, '\u{3040}'..='\u{30FF}'));
        if han && !kana {
            Self::Chinese
        } else {
            Self::Other
        }
    }
}

/// Whether `question` is written in Chinese (as far as the prompt's language goes).
pub(crate) fn is_chinese(question: &str) -> bool {
    Tongue::of(question) == Tongue::Chinese
}

/// The system prompt for talking about `book` as `persona`, written in the language of
/// `question`. Short on purpose: small local models follow a few plain sentences and the
/// facts, not a page of instructions.
pub fn system_prompt(book: &Book, persona: &Persona, question: &str) -> String {
    let tongue = Tongue::of(question);
    let title = &book.title;
    let authors = (!book.authors.is_empty()).then(|| book.author_line());
    let mut prompt = match (tongue, persona.key.as_deref()) {
        (Tongue::Chinese, Some("author")) => format!(
            "你是《{title}》的作者{}，以作者本人的口吻回答读者。",
            authors.as_deref().unwrap_or("")
        ),
        (Tongue::Chinese, Some("librarian") | None) if persona.builtin => {
            format!("你是熟悉《{title}》的图书管理员，根据下面的书目信息回答读者的问题。")
        }
        (Tongue::Chinese, _) => format!(
            "你扮演「{}」（{}），与读者讨论《{title}》。",
            persona.name, persona.description
        ),
        (Tongue::Other, Some("author")) => match &authors {
            Some(authors) => format!(
                "You are {authors}, the author of \"{title}\". Answer the reader as the author."
            ),
            None => format!("You are the author of \"{title}\". Answer the reader as the author."),
        },
        (Tongue::Other, Some("librarian") | None) if persona.builtin => format!(
            "You are a librarian who knows the book \"{title}\". Answer the reader's question \
             using the facts below."
        ),
        (Tongue::Other, _) => format!(
            "You play {} ({}), talking with the reader about the book \"{title}\".",
            persona.name, persona.description
        ),
    };
    let labels = match tongue {
        Tongue::Chinese => {
            prompt.push_str("不确定就直说，不要编造。用中文回答。\n\n书目信息：\n");
            FACT_LABELS_ZH
        }
        Tongue::Other => {
            prompt.push_str(
                " If you are not sure, say so; never make facts up. Answer in the language \
                 the reader writes in.\n\nThe book:\n",
            );
            FACT_LABELS_EN
        }
    };
    let facts = [
        Some(title.clone()),
        book.subtitle.clone(),
        authors,
        (!book.translators.is_empty()).then(|| book.translators.join(", ")),
        book.publisher.clone(),
        book.published.clone(),
        Some(book.isbn.to_string()),
        book.introduction.as_deref().map(clip),
        book.author_intro.as_deref().map(clip),
    ];
    for (label, fact) in labels.iter().zip(facts) {
        if let Some(fact) = fact {
            let _ = writeln!(prompt, "{label}{fact}");
        }
    }
    prompt
}

/// The names of the book's facts, in the order [`system_prompt`] lists them.
const FACT_LABELS_ZH: [&str; 9] = [
    "书名：",
    "副标题：",
    "作者：",
    "译者：",
    "出版社：",
    "出版时间：",
    "ISBN：",
    "内容简介：",
    "作者简介：",
];
const FACT_LABELS_EN: [&str; 9] = [
    "Title: ",
    "Subtitle: ",
    "Author: ",
    "Translator: ",
    "Publisher: ",
    "Published: ",
    "ISBN: ",
    "Summary: ",
    "About the author: ",
];

/// A history turn usable in a prompt: finished or stopped, with text. Reasoning is never
/// sent back (DeepSeek refuses it).
fn usable(message: &Message) -> bool {
    matches!(
        message.status,
        MessageStatus::Complete | MessageStatus::Partial
    ) && !message.content.trim().is_empty()
}

/// The question does not fit the budget even without any history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionTooLong;

/// The fewest tokens worth keeping of a shortened history turn.
const MIN_SHORTENED_TURN: i64 = 24;

/// System prompt, then the newest history turns that fit `budget` tokens (oldest first),
/// then the question. Costs are estimates multiplied by `scale` (the calibration of the
/// estimate against the model's own counts). Older turns go first; the turn that no
/// longer fits is shortened to what room is left rather than dropped, so one long reply
/// never costs the whole history.
///
/// # Errors
///
/// [`QuestionTooLong`] when the system prompt and the question alone exceed the budget.
pub fn build(
    system: String,
    history: &[(Role, String)],
    question: &str,
    budget: i64,
    scale: f64,
) -> Result<Vec<PromptMessage>, QuestionTooLong> {
    let cost = |text: &str| scaled(estimate_tokens(text) + MESSAGE_OVERHEAD, scale);
    let mut remaining = budget - cost(&system) - cost(question);
    if remaining < 0 {
        return Err(QuestionTooLong);
    }
    let mut kept = Vec::new();
    for (role, content) in history.iter().rev() {
        let needed = cost(content);
        if needed <= remaining {
            remaining -= needed;
            kept.push(PromptMessage {
                role: *role,
                content: content.clone(),
            });
            continue;
        }
        let room = unscaled(remaining, scale) - MESSAGE_OVERHEAD;
        if room >= MIN_SHORTENED_TURN {
            kept.push(PromptMessage {
                role: *role,
                content: shorten(content, room),
            });
        }
        break;
    }
    kept.reverse();
    let mut messages = Vec::with_capacity(kept.len() + 2);
    messages.push(PromptMessage {
        role: Role::System,
        content: system,
    });
    messages.extend(kept);
    messages.push(PromptMessage {
        role: Role::User,
        content: question.to_owned(),
    });
    Ok(messages)
}

fn scaled(tokens: i64, scale: f64) -> i64 {
    // Estimates are small whole numbers; the product is rounded up.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let out = (tokens as f64 * scale).ceil() as i64;
    out
}

fn unscaled(tokens: i64, scale: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let out = (tokens as f64 / scale).floor() as i64;
    out
}

/// The start of `text` within about `tokens` estimated tokens (one kept for the mark),
/// marked as cut. One pass: turns can be a megabyte long.
fn shorten(text: &str, tokens: i64) -> String {
    format!("{}…", &text[..prefix_within(text, tokens - 1)])
}

/// The usable turns of stored messages, as `(role, content)`.
pub fn history_of(messages: &[Message]) -> Vec<(Role, String)> {
    messages
        .iter()
        .filter(|m| usable(m))
        .map(|m| (m.role, m.content.clone()))
        .collect()
}

pub use crate::tokens::estimate_prompt;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PersonaId;
    use crate::timestamp::Timestamp;

    fn book() -> Book {
        crate::books::BookFields {
            title: "三体".into(),
            authors: vec!["刘慈欣".into()],
            introduction: Some("文化大革命如火如荼进行的同时……".into()),
            ..Default::default()
        }
        .into_book(
            &crate::books::Isbn::parse("9787536692930").unwrap(),
            "douban",
            Timestamp::now(),
        )
    }

    fn persona(key: Option<&str>, builtin: bool) -> Persona {
        Persona {
            id: PersonaId::new(1),
            key: key.map(str::to_owned),
            name: "福尔摩斯".into(),
            description: "一位爱推理的侦探".into(),
            builtin,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn system_prompts_carry_the_book_and_the_persona() {
        let librarian = system_prompt(&book(), &persona(Some("librarian"), true), "谁写的？");
        assert!(librarian.contains("图书管理员") && librarian.contains("《三体》"));
        assert!(librarian.contains("作者：刘慈欣") && librarian.contains("内容简介：文化大革命"));
        let author = system_prompt(&book(), &persona(Some("author"), true), "为什么写这本书");
        assert!(author.contains("你是《三体》的作者刘慈欣"));
        let custom = system_prompt(&book(), &persona(None, false), "凶手是谁");
        assert!(custom.contains("福尔摩斯") && custom.contains("一位爱推理的侦探"));
    }

    #[test]
    fn system_prompts_speak_the_language_of_the_question_briefly() {
        let english = system_prompt(&book(), &persona(Some("librarian"), true), "Who wrote it?");
        assert!(english.starts_with("You are a librarian who knows the book \"三体\""));
        assert!(english.contains("Author: 刘慈欣") && english.contains("ISBN: "));
        assert!(!english.contains("书目信息"), "{english}");
        assert!(english.contains("Answer in the language the reader writes in"));
        let author = system_prompt(&book(), &persona(Some("author"), true), "Why this book?");
        assert!(
            author.starts_with("You are 刘慈欣, the author of \"三体\""),
            "{author}"
        );
        // Japanese (kana beside kanji) is not Chinese.
        let japanese = system_prompt(&book(), &persona(Some("librarian"), true), "作者は誰ですか");
        assert!(japanese.starts_with("You are a librarian"));
        let chinese = system_prompt(&book(), &persona(Some("librarian"), true), "作者是谁");
        assert!(chinese.contains("用中文回答") && chinese.contains("书目信息："));
        // The instructions are a few sentences, the rest is the book.
        let instructions = chinese.split("书目信息").next().unwrap();
        assert!(instructions.chars().count() < 60, "{instructions}");
    }

    #[test]
    fn history_keeps_the_newest_turns_that_fit() {
        let history: Vec<(Role, String)> = (0..50)
            .map(|i| {
                (
                    if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    format!("第{i}轮：{}", "字".repeat(40)),
                )
            })
            .collect();
        let messages = build("系统".into(), &history, "问题", 500, 1.0).unwrap();
        assert_eq!(messages.first().unwrap().role, Role::System);
        assert_eq!(messages.last().unwrap().content, "问题");
        let kept = &messages[1..messages.len() - 1];
        assert!(!kept.is_empty() && kept.len() < 50);
        assert!(
            kept.last().unwrap().content.starts_with("第49轮"),
            "newest kept"
        );
        assert!(estimate_prompt(&messages) <= 500);
        let all = build("系统".into(), &history, "问题", 100_000, 1.0).unwrap();
        assert_eq!(all.len(), 52);
        let scaled = build("系统".into(), &history, "问题", 500, 2.0).unwrap();
        assert!(scaled.len() < messages.len());
    }

    #[test]
    fn one_long_turn_is_shortened_not_the_whole_history_dropped() {
        let history = vec![
            (Role::User, "第一个问题".to_owned()),
            (Role::Assistant, "短答".to_owned()),
            (Role::User, "第二个问题".to_owned()),
            (Role::Assistant, "长".repeat(5000)),
        ];
        let messages = build("系统".into(), &history, "第三个问题", 400, 1.0).unwrap();
        let long = &messages[messages.len() - 2];
        assert!(long.content.ends_with('…') && long.content.chars().count() < 400);
        assert!(
            estimate_prompt(&messages) <= 400,
            "{}",
            estimate_prompt(&messages)
        );
        assert_eq!(
            build("系统".into(), &history, &"问".repeat(500), 400, 1.0),
            Err(QuestionTooLong)
        );
    }
}
