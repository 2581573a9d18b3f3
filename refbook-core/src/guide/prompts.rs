//! What the model is asked while building a guide: a section's summary from that section
//! and the summaries before it (map), then the whole book's from every section's (reduce).

use crate::domain::Role;
use crate::llm::PromptMessage;
use crate::tokens::estimate_tokens;

/// The longest summary asked for, in tokens.
pub(super) const SUMMARY_TOKENS: u32 = 300;

/// The longest whole-book summary asked for, in tokens.
pub(super) const BOOK_SUMMARY_TOKENS: u32 = 600;

/// The earlier summaries a section's prompt carries, at most, in estimated tokens.
pub(super) const CONTEXT_TOKENS: i64 = 600;

fn message(role: Role, content: String) -> PromptMessage {
    PromptMessage { role, content }
}

/// The newest of `earlier` (one line each) that fit [`CONTEXT_TOKENS`], oldest first.
fn recent(earlier: &[String]) -> String {
    let mut room = CONTEXT_TOKENS;
    let mut kept: Vec<&str> = Vec::new();
    for line in earlier.iter().rev() {
        room -= estimate_tokens(line);
        if room < 0 {
            break;
        }
        kept.push(line);
    }
    kept.reverse();
    kept.join("\n")
}

/// The prompt of one section's summary: its text, and what came before in short.
pub(super) fn section(
    title: &str,
    text: &str,
    earlier: &[String],
    chinese: bool,
) -> Vec<PromptMessage> {
    let before = recent(earlier);
    let (system, user) = if chinese {
        (
            "你在为读者写一本书的导读（深度解析）。请用 150 字以内概括下面这一部分：发生了什么、出现了哪些人物、他们有什么变化。只依据给出的原文和前文提要，不要提及或暗示这一部分之后的任何内容，不要引用你对这本书的其他了解。只写概括本身。".to_owned(),
            format!(
                "前文提要：\n{}\n\n这一部分：{}\n原文：\n{text}",
                if before.is_empty() { "（这是开头）" } else { before.as_str() },
                if title.is_empty() { "（无标题）" } else { title },
            ),
        )
    } else {
        (
            "You write a reader's guide to a book. Summarise the part below in at most 120 \
             words: what happens, who appears, how they change. Use only the text given and \
             the summary of what came before; never mention or hint at anything after this \
             part, and do not draw on anything else you know about the book. Write only the \
             summary."
                .to_owned(),
            format!(
                "What came before:\n{}\n\nThis part: {}\nText:\n{text}",
                if before.is_empty() {
                    "(this is the beginning)"
                } else {
                    before.as_str()
                },
                if title.is_empty() {
                    "(untitled)"
                } else {
                    title
                },
            ),
        )
    };
    vec![message(Role::System, system), message(Role::User, user)]
}

/// The prompt of the whole book's summary from its sections' summaries.
pub(super) fn book(summaries: &str, chinese: bool) -> Vec<PromptMessage> {
    let (system, user) = if chinese {
        (
            "你在为读者写一本书的导读（深度解析）。根据下面按顺序排列的各部分概要，写出全书的导读（400 字以内）：主题、主要人物及其变化、全书结构。只依据这些概要。".to_owned(),
            format!("各部分概要：\n{summaries}"),
        )
    } else {
        (
            "You write a reader's guide to a book. From the summaries of its parts below, in \
             order, write the guide to the whole book in at most 300 words: its themes, its \
             main people and how they change, its structure. Use only these summaries."
                .to_owned(),
            format!("The parts, in order:\n{summaries}"),
        )
    };
    vec![message(Role::System, system), message(Role::User, user)]
}
