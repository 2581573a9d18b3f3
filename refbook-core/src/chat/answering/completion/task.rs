//! A client's own housekeeping requests on the OpenAI face — Open WebUI asks the chat's
//! model for a title, tags and follow-up suggestions after each answer, with its own
//! instructions — told apart from a reader's questions, so they carry no book prompt or
//! passages and cost the reader a quarter of their tokens.

use super::super::step::{passed_tokens, refusal_of, Opened};
use super::super::{question_too_long, Answering};
use crate::chat::exchange::{ClientMessage, Exchange};
use crate::chat::{prompt, Role};
use crate::domain::UserId;
use crate::error::Result;
use crate::llm::{ChatRequest, ModelError, Priority, PromptMessage, Sampling, ToolPassthrough};

/// How the last user message of a client's task begins (Open WebUI's title, tags,
/// follow-up, query, emoji and autocomplete templates all start so).
const TASK_MARKER: &str = "### Task:";

/// The longest answer to a task, in tokens.
pub const TASK_MAX_TOKENS: u32 = 1024;

/// A task's tokens count 1 in this many against the daily quota (rounded up).
pub const TASK_COST_DIVISOR: i64 = 4;

/// Whether `messages` are a client's housekeeping task: the last user message begins
/// with `### Task:`.
pub fn is_client_task(messages: &[ClientMessage]) -> bool {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .is_some_and(|m| m.content.trim_start().starts_with(TASK_MARKER))
}

impl Answering {
    /// Opens the model's stream for a task: the client's own instructions and exchange,
    /// as much as fits, and nothing of the book. A local model serves it after readers'
    /// questions.
    pub(super) async fn open_task(
        &self,
        exchange: &Exchange,
        user_id: UserId,
        max_tokens: u32,
        sampling: Sampling,
        tools: Option<ToolPassthrough>,
    ) -> Result<Opened> {
        let budget = self.shared.limits.context_tokens - i64::from(max_tokens);
        let system = exchange.instructions.clone().unwrap_or_default();
        let mut messages = prompt::build(
            system,
            &exchange.history,
            &exchange.question,
            budget,
            self.calibration.ratio(),
        )
        .map_err(|_| question_too_long())?;
        if messages.first().is_some_and(|m| m.content.is_empty()) {
            messages.remove(0);
        }
        if let Some(text) = &exchange.unfinished {
            messages.push(PromptMessage {
                role: Role::Assistant,
                content: text.clone(),
            });
        }
        let prompt_estimate =
            prompt::estimate_prompt(&messages) + tools.as_ref().map_or(0, passed_tokens);
        let request = ChatRequest {
            messages,
            user: user_id.to_string(),
            max_tokens: Some(max_tokens),
            sampling,
            priority: Priority::Background,
            tools: tools.clone(),
        };
        match self.model.stream(request).await {
            Ok(stream) => Ok(Opened {
                stream,
                prompt_estimate,
                sources: Vec::new(),
            }),
            Err(ModelError::ContextExceeded) => Err(question_too_long()),
            Err(err) => Err(refusal_of(err, tools.as_ref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(role: &str, content: &str) -> ClientMessage {
        ClientMessage::parse(role, content.to_owned()).unwrap()
    }

    #[test]
    fn open_webui_tasks_are_recognised_by_their_last_user_message() {
        let title = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n<chat_history>\nUSER: 谁写的？\n</chat_history>";
        assert!(is_client_task(&[said("user", title)]));
        assert!(is_client_task(&[
            said("system", "x"),
            said("user", &format!("  {title}"))
        ]));
        assert!(!is_client_task(&[said("user", "谁写的？")]));
        assert!(!is_client_task(&[said(
            "user",
            "What does ### Task: mean?"
        )]));
        assert!(!is_client_task(&[
            said("system", title),
            said("user", "谁写的？")
        ]));
        // The task is the last user message, even with an answer to continue after it.
        assert!(is_client_task(&[
            said("user", title),
            said("assistant", "{")
        ]));
    }
}
