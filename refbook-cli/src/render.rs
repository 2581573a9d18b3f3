//! Plain-text rendering for people.

use std::fmt::Write;

use refbook_core::books::Book;
use refbook_core::Language;

/// A book as a short readable block.
pub fn book(book: &Book, language: Language) -> String {
    let zh = language == Language::Zh;
    let mut out = String::new();
    let title = match &book.subtitle {
        Some(sub) => format!("{}: {sub}", book.title),
        None => book.title.clone(),
    };
    let _ = writeln!(out, "{title}");
    if !book.authors.is_empty() {
        let _ = writeln!(
            out,
            "{}{}",
            if zh { "作者：" } else { "by " },
            book.author_line()
        );
    }
    if !book.translators.is_empty() {
        let _ = writeln!(
            out,
            "{}{}",
            if zh { "译者：" } else { "translated by " },
            book.translators.join(", ")
        );
    }
    let mut facts = Vec::new();
    facts.extend(book.publisher.clone());
    facts.extend(book.published.clone());
    if let Some(pages) = book.pages {
        facts.push(if zh {
            format!("{pages} 页")
        } else {
            format!("{pages} pages")
        });
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "{}", facts.join(" · "));
    }
    let _ = write!(out, "ISBN-13 {}", book.isbn);
    if let Some(isbn10) = &book.isbn10 {
        let _ = write!(out, " · ISBN-10 {isbn10}");
    }
    let _ = writeln!(
        out,
        " · {} {}",
        if zh { "来源" } else { "source" },
        book.source
    );
    if !book.tags.is_empty() {
        let _ = writeln!(
            out,
            "{}{}",
            if zh { "标签：" } else { "tags: " },
            book.tags.join(", ")
        );
    }
    if let Some(intro) = &book.introduction {
        let _ = writeln!(
            out,
            "\n{}\n{}",
            if zh { "简介" } else { "About the book" },
            indent(intro)
        );
    }
    if let Some(about) = &book.author_intro {
        let _ = writeln!(
            out,
            "\n{}\n{}",
            if zh {
                "作者简介"
            } else {
                "About the author"
            },
            indent(about)
        );
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest quote of a source shown under an answer, in characters.
const QUOTE_CHARS: usize = 60;

/// Sources as lines under an answer: `[n] section · the start of the passage…`.
pub fn sources(sources: &[&refbook_core::chat::Source]) -> String {
    let mut out = String::new();
    for source in sources {
        let quote: String = source
            .quote
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(QUOTE_CHARS)
            .collect();
        let more = if source.quote.chars().count() > QUOTE_CHARS {
            "…"
        } else {
            ""
        };
        let section = if source.section.title.is_empty() {
            String::new()
        } else {
            format!("{} · ", source.section.title)
        };
        out.push_str(&format!("[{}] {section}{quote}{more}\n", source.n));
    }
    out
}

/// How far the reader has read, as one line (`None`: the whole book).
pub fn progress(progress: Option<&refbook_core::books::Progress>, language: Language) -> String {
    let zh = language == Language::Zh;
    let Some(point) = progress.and_then(|p| p.point.as_ref()) else {
        return if zh {
            "阅读进度：未设置（回答可用全书）\n".to_owned()
        } else {
            "Reading progress: not set (answers may use the whole book)\n".to_owned()
        };
    };
    let title = if point.section.title.is_empty() {
        format!("#{}", point.section.index)
    } else {
        format!("#{} {}", point.section.index, point.section.title)
    };
    let percent = (point.share() * 100.0).round();
    if zh {
        format!("阅读进度：读到 {title}（约 {percent}%），回答不会透露之后的内容\n")
    } else {
        format!(
            "Reading progress: up to {title} (about {percent}%); answers reveal nothing after it\n"
        )
    }
}

/// Messages, oldest first, with who said what.
pub fn messages(messages: &[refbook_core::chat::Message], style: crate::terminal::Style) -> String {
    use refbook_core::chat::{MessageStatus, Role};
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::User => "你",
            Role::Assistant => "书",
            Role::System => "设定",
        };
        let note = match m.status {
            MessageStatus::Complete => "",
            MessageStatus::Generating => " （生成中）",
            MessageStatus::Partial => " （已停止）",
            MessageStatus::Failed => " （未完成）",
        };
        let _ = writeln!(out, "{}{}", style.bold(&format!("{who}>")), style.dim(note));
        if let Some(reasoning) = m.reasoning.as_deref().filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "{}", style.dim(reasoning));
        }
        let _ = writeln!(out, "{}\n", m.content);
    }
    out
}
