//! What a client sends to be answered: its messages, parsed at the edge by one parser
//! ([`ClientMessage::parse`], used by `/api/chat/stream/` and `/v1/chat/completions`
//! alike), then checked as an [`Exchange`] by the rules of the face that received it.

use super::Role;
use crate::error::{Error, Result};

/// One message of an exchange as a client sent it, its role parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// Who wrote it: the reader, the model, or instructions (`system`, and OpenAI's
    /// `developer`).
    pub role: Role,
    /// Its text, as sent.
    pub content: String,
}

impl ClientMessage {
    /// Parses a message as a client sent it: role `user`, `assistant`, `system`, or
    /// `developer` (OpenAI's newer name for `system`).
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` (field `messages`) for any other role: tool calls and their
    /// results are not supported.
    pub fn parse(role: &str, content: String) -> Result<Self> {
        let role = match role {
            "developer" => Role::System,
            other => Role::parse(other).ok_or_else(|| {
                Error::invalid(
                    "messages",
                    "role 须为 system、user 或 assistant（不支持工具调用）",
                    "role must be system, user or assistant (tools are not supported)",
                )
            })?,
        };
        Ok(Self { role, content })
    }
}

/// How a face reads an exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExchangeRules {
    /// The most messages one request may carry.
    pub max_messages: usize,
    /// The longest message, in characters.
    pub max_message_chars: usize,
    /// Whether `system` messages are taken as the client's own instructions (the
    /// OpenAI face) rather than refused (the mini-program's stateless endpoint, whose
    /// clients never write the system prompt). Such a face also takes a last
    /// `assistant` message as an unfinished answer to continue.
    pub instructions: bool,
}

/// A checked exchange: the client's own instructions, the earlier turns, the question.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The client's `system` messages, joined (only where the face takes them).
    pub instructions: Option<String>,
    /// The earlier turns, oldest first.
    pub history: Vec<(Role, String)>,
    /// The user's last message.
    pub question: String,
    /// An unfinished answer to that question to continue (a last `assistant` message,
    /// where the face takes one).
    pub unfinished: Option<String>,
}

/// The most characters of a client's own `system` instructions kept in the prompt.
pub const MAX_INSTRUCTIONS_CHARS: usize = 4000;

impl Exchange {
    /// Checks `messages` by `rules`: 1 to `max_messages` of them; the last must be the
    /// user's and a valid message. Where `system` messages are refused, every earlier
    /// turn must be a valid message too; where they are instructions (at most
    /// [`MAX_INSTRUCTIONS_CHARS`] together), earlier turns need only be free of control
    /// characters, and empty assistant turns (what some clients send for a reply still
    /// to come) are skipped, and a last non-empty assistant message after the user's is
    /// an unfinished answer to continue.
    pub(crate) fn check(messages: Vec<ClientMessage>, rules: ExchangeRules) -> Result<Self> {
        let invalid = |zh: &str, en: &str| Error::invalid("messages", zh.to_owned(), en.to_owned());
        if messages.is_empty() || messages.len() > rules.max_messages {
            return Err(Error::invalid(
                "messages",
                format!("messages 须为 1–{} 条", rules.max_messages),
                format!("messages must hold 1–{} entries", rules.max_messages),
            ));
        }
        let mut instructions = String::new();
        let mut turns = Vec::with_capacity(messages.len());
        for ClientMessage { role, content } in messages {
            if !rules.instructions {
                if role == Role::System {
                    return Err(invalid(
                        "不接受客户端的 system 消息",
                        "system messages are written by the server",
                    ));
                }
                turns.push((role, checked_content(&content, rules.max_message_chars)?));
                continue;
            }
            crate::text::refuse_controls("messages", &content)?;
            match role {
                Role::System => {
                    if !instructions.is_empty() {
                        instructions.push('\n');
                    }
                    instructions.push_str(content.trim());
                }
                Role::Assistant if content.trim().is_empty() => {}
                Role::User | Role::Assistant => turns.push((role, content)),
            }
        }
        if instructions.chars().count() > MAX_INSTRUCTIONS_CHARS {
            return Err(Error::invalid(
                "messages",
                format!("system 消息合计不能超过 {MAX_INSTRUCTIONS_CHARS} 个字符"),
                format!("system messages must total at most {MAX_INSTRUCTIONS_CHARS} characters"),
            ));
        }
        let unfinished = match turns.last() {
            Some((Role::Assistant, _)) if rules.instructions => turns.pop().map(|(_, text)| text),
            _ => None,
        };
        if let Some(text) = &unfinished {
            if text.chars().count() > rules.max_message_chars {
                return Err(Error::invalid(
                    "messages",
                    format!("待续写的回答不能超过 {} 个字符", rules.max_message_chars),
                    format!(
                        "the answer to continue must be at most {} characters",
                        rules.max_message_chars
                    ),
                ));
            }
        }
        let Some((Role::User, question)) = turns.pop() else {
            return Err(invalid(
                "最后一条消息须为用户的提问",
                "The last message must be the user's",
            ));
        };
        Ok(Self {
            instructions: (!instructions.is_empty()).then_some(instructions),
            history: turns,
            question: checked_content(&question, rules.max_message_chars)?,
            unfinished,
        })
    }
}

/// `content` as a message may hold it: no control characters, not blank, at most
/// `max_chars` characters (`INVALID_PARAMS`, field `content`, otherwise).
pub(crate) fn checked_content(content: &str, max_chars: usize) -> Result<String> {
    crate::text::refuse_controls("content", content)?;
    if content.trim().is_empty() {
        return Err(Error::invalid(
            "content",
            "消息不能为空",
            "content must not be empty",
        ));
    }
    if content.chars().count() > max_chars {
        return Err(Error::invalid(
            "content",
            format!("消息不能超过 {max_chars} 个字符"),
            format!("content must be at most {max_chars} characters"),
        ));
    }
    Ok(content.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(pairs: &[(&str, &str)]) -> Vec<ClientMessage> {
        pairs
            .iter()
            .map(|(role, content)| ClientMessage::parse(role, (*content).to_owned()).unwrap())
            .collect()
    }

    const STATELESS: ExchangeRules = ExchangeRules {
        max_messages: 4,
        max_message_chars: 50,
        instructions: false,
    };
    const COMPLETION: ExchangeRules = ExchangeRules {
        instructions: true,
        ..STATELESS
    };

    #[test]
    fn roles_parse_once_for_both_faces() {
        assert_eq!(
            ClientMessage::parse("developer", "x".into()).unwrap().role,
            Role::System
        );
        for refused in ["tool", "function", "User", ""] {
            let err = ClientMessage::parse(refused, "x".into()).unwrap_err();
            assert_eq!(err.field(), Some("messages"), "{refused}");
        }
    }

    #[test]
    fn system_messages_are_instructions_only_where_the_face_takes_them() {
        let messages = said(&[
            ("system", " Be brief. "),
            ("developer", "In French."),
            ("user", "Q"),
        ]);
        assert!(Exchange::check(messages.clone(), STATELESS).is_err());
        let exchange = Exchange::check(messages, COMPLETION).unwrap();
        assert_eq!(
            exchange.instructions.as_deref(),
            Some("Be brief.\nIn French.")
        );
        assert!(exchange.history.is_empty());
        assert_eq!(exchange.question, "Q");
    }

    #[test]
    fn earlier_turns_are_checked_as_the_face_says() {
        let messages = said(&[("user", "A"), ("assistant", " "), ("user", "B")]);
        assert!(Exchange::check(messages.clone(), STATELESS).is_err());
        let exchange = Exchange::check(messages, COMPLETION).unwrap();
        assert_eq!(exchange.history, vec![(Role::User, "A".to_owned())]);
    }

    #[test]
    fn the_last_message_is_a_valid_question_and_the_count_is_bounded() {
        for rules in [STATELESS, COMPLETION] {
            assert!(Exchange::check(said(&[("assistant", "B")]), rules).is_err());
            assert!(Exchange::check(said(&[("user", " ")]), rules).is_err());
            assert!(Exchange::check(said(&[("user", &"x".repeat(51))]), rules).is_err());
            assert!(Exchange::check(Vec::new(), rules).is_err());
            assert!(Exchange::check(said(&[("user", "A"); 5]), rules).is_err());
            assert!(Exchange::check(said(&[("user", "A"); 4]), rules).is_ok());
        }
    }

    #[test]
    fn a_last_answer_is_continued_only_where_the_face_takes_instructions() {
        let messages = said(&[("user", "Q"), ("assistant", "Half an")]);
        assert!(Exchange::check(messages.clone(), STATELESS).is_err());
        let exchange = Exchange::check(messages, COMPLETION).unwrap();
        assert_eq!(exchange.question, "Q");
        assert_eq!(exchange.unfinished.as_deref(), Some("Half an"));
        // Two answers in a row, or one with no question before it, are not a question.
        let doubled = said(&[("user", "Q"), ("assistant", "A"), ("assistant", "B")]);
        assert!(Exchange::check(doubled, COMPLETION).is_err());
        // An empty last answer is a reply still to come, not one to continue.
        let empty = said(&[("user", "Q"), ("assistant", "")]);
        let exchange = Exchange::check(empty, COMPLETION).unwrap();
        assert_eq!(exchange.unfinished, None);
        let long = said(&[("user", "Q"), ("assistant", &"x".repeat(51))]);
        assert!(Exchange::check(long, COMPLETION).is_err());
    }
}
