//! The body of `POST /v1/chat/completions` as OpenAI's clients send it, read into a
//! [`CompletionRequest`]: the fields Refbook honours, and honest refusals of what it cannot
//! do (a required tool call, a strict JSON schema) rather than a silent plain-text answer.

use refbook_core::chat::{is_client_task, BookModel, ClientMessage, CompletionRequest, Sampling};
use serde::Deserialize;
use serde_json::Value;

use crate::api_error::ApiError;

/// A message's `content`: a string, or OpenAI's array of content parts (text only).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
pub(crate) struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Option<Content>,
}

/// `stop`: one sequence or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// The fields of OpenAI's request Refbook honours or refuses; others (logprobs, `user` —
/// the model is told Refbook's own user id —, …) are accepted and ignored, as
/// OpenAI-compatible servers commonly do. docs/API.md lists every parameter.
#[derive(Deserialize)]
pub struct ChatCompletionBody {
    model: String,
    messages: Vec<WireMessage>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    stop: Option<Stop>,
    n: Option<u32>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    response_format: Option<Value>,
}

/// The kinds of text part chat completions take.
const CHAT_TEXT_PARTS: &[&str] = &["text"];

/// The text of a message (`None` content: empty); `kinds`: the text parts the face
/// takes, `param`: the parameter named when a part is not text.
pub(crate) fn text_of(
    content: Option<Content>,
    kinds: &[&str],
    param: &'static str,
) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(text)) => Ok(text),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match part.text {
                    Some(piece) if kinds.contains(&part.kind.as_str()) => text.push_str(&piece),
                    _ => {
                        return Err(ApiError::invalid(
                            Some(param),
                            "只支持文本内容",
                            "Only text content parts are supported",
                        ))
                    }
                }
            }
            Ok(text)
        }
    }
}

impl ChatCompletionBody {
    /// The completion asked for, whether to stream it, and whether to report usage in
    /// the stream; `task_header`: the request carries the operator's task header.
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` (OpenAI's `invalid_request_error`) with the parameter named.
    pub fn into_request(
        self,
        task_header: bool,
    ) -> Result<(CompletionRequest, bool, bool), ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(
                Some("n"),
                "n 只能为 1",
                "n must be 1 (one choice per request)",
            ));
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        if max_tokens == Some(0) {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens 须至少为 1",
                "max_tokens must be at least 1",
            ));
        }
        let format_instruction = output_instruction(
            self.tools.as_deref(),
            self.tool_choice.as_ref(),
            self.response_format.as_ref(),
        )?;
        let mut messages = self
            .messages
            .into_iter()
            .map(|m| {
                Ok(ClientMessage::parse(
                    &m.role,
                    text_of(m.content, CHAT_TEXT_PARTS, "messages")?,
                )?)
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        if let Some(instruction) = format_instruction {
            // Folded into the reader's instructions, after the book's prompt.
            messages.insert(0, ClientMessage::parse("system", instruction)?);
        }
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(one)) => vec![one],
            Some(Stop::Many(many)) => many,
        };
        let task = task_header || is_client_task(&messages);
        let request = CompletionRequest {
            model: BookModel::parse(&self.model)?,
            messages,
            max_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                stop,
            },
            task,
        };
        let include_usage = self
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok((request, self.stream.unwrap_or(false), include_usage))
    }
}

/// The model cannot call tools: `tool_choice` that demands a call is refused.
fn refuse_required_tools(tool_choice: Option<&Value>) -> Result<(), ApiError> {
    let demanded = match tool_choice {
        None | Some(Value::Null) => false,
        Some(Value::String(choice)) => match choice.as_str() {
            "none" | "auto" => false,
            "required" => true,
            _ => {
                return Err(ApiError::invalid(
                    Some("tool_choice"),
                    "tool_choice 须为 none、auto、required 或指定的函数",
                    "tool_choice must be none, auto, required or a named function",
                ))
            }
        },
        // `allowed_tools` demands a call only in its `required` mode; a named function
        // or custom tool always does.
        Some(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("allowed_tools") => {
                choice
                    .pointer("/allowed_tools/mode")
                    .or_else(|| choice.get("mode"))
                    .and_then(Value::as_str)
                    == Some("required")
            }
            _ => true,
        },
    };
    if demanded {
        return Err(ApiError::invalid(
            Some("tool_choice"),
            "这个模型不能调用工具：tool_choice 不能为 required 或指定函数",
            "This model cannot call tools: tool_choice cannot be `required` or a named \
             function (use `auto`, or leave it out, for a text answer)",
        ));
    }
    Ok(())
}

/// The most characters of a JSON schema put in the prompt.
const MAX_SCHEMA_CHARS: usize = 3000;

/// What the model is told for `response_format` (`None`: plain text). `json_object` and
/// a non-strict `json_schema` are asked for in the prompt; a strict schema cannot be
/// guaranteed and is refused, as is a tool call the request demands.
pub(crate) fn output_instruction(
    tools: Option<&[Value]>,
    tool_choice: Option<&Value>,
    response_format: Option<&Value>,
) -> Result<Option<String>, ApiError> {
    if tools.is_some_and(|tools| !tools.is_empty()) || tool_choice.is_some() {
        refuse_required_tools(tool_choice)?;
    }
    let Some(format) = response_format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let bad_format = || {
        ApiError::invalid(
            Some("response_format"),
            "response_format.type 须为 text、json_object 或 json_schema",
            "response_format.type must be text, json_object or json_schema",
        )
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(
            "只输出一个 JSON 对象，不要任何其他文字或代码块标记。\
             (Reply with one JSON object only: no prose, no code fences.)"
                .to_owned(),
        )),
        Some("json_schema") => {
            let spec = format.get("json_schema").ok_or_else(bad_format)?;
            if spec.get("strict").and_then(Value::as_bool) == Some(true) {
                return Err(ApiError::invalid(
                    Some("response_format"),
                    "这个模型不能保证严格符合 JSON schema（strict: true）",
                    "This model cannot guarantee a strict JSON schema (`strict: true`); \
                     send `strict: false` to have the schema asked for in the prompt",
                ));
            }
            let schema = spec.get("schema").map(Value::to_string).unwrap_or_default();
            if schema.chars().count() > MAX_SCHEMA_CHARS {
                return Err(ApiError::invalid(
                    Some("response_format"),
                    format!("JSON schema 不能超过 {MAX_SCHEMA_CHARS} 个字符"),
                    format!("the JSON schema must be at most {MAX_SCHEMA_CHARS} characters"),
                ));
            }
            Ok(Some(format!(
                "只输出一个符合下面 JSON schema 的 JSON 对象，不要任何其他文字或代码块标记。\
                 (Reply with one JSON object that follows this JSON schema: no prose, no \
                 code fences.)\n{schema}"
            )))
        }
        _ => Err(bad_format()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(result: Result<Option<String>, ApiError>) -> Option<String> {
        result.err().and_then(|err| err.field().map(str::to_owned))
    }

    #[test]
    fn demanded_tool_calls_are_refused_and_optional_tools_answer_in_text() {
        let tools = [json!({"type": "function", "function": {"name": "f"}})];
        for choice in [
            json!("required"),
            json!({"type": "function", "function": {"name": "f"}}),
        ] {
            let refused = output_instruction(Some(&tools), Some(&choice), None);
            assert_eq!(field(refused).as_deref(), Some("tool_choice"), "{choice}");
        }
        let allowed = |mode: &str| json!({"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": []}});
        let refused = output_instruction(Some(&tools), Some(&allowed("required")), None);
        assert_eq!(field(refused).as_deref(), Some("tool_choice"));
        for choice in [
            None,
            Some(json!("auto")),
            Some(json!("none")),
            Some(allowed("auto")),
        ] {
            assert_eq!(
                output_instruction(Some(&tools), choice.as_ref(), None).ok(),
                Some(None)
            );
        }
        let odd = output_instruction(None, Some(&json!("sometimes")), None);
        assert_eq!(field(odd).as_deref(), Some("tool_choice"));
    }

    #[test]
    fn json_is_asked_for_in_the_prompt_and_strict_schemas_are_refused() {
        let object = output_instruction(None, None, Some(&json!({"type": "json_object"})));
        assert!(object.unwrap().unwrap().contains("JSON"));
        let schema = json!({"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object", "properties": {"title": {"type": "string"}}}}});
        let asked = output_instruction(None, None, Some(&schema))
            .unwrap()
            .unwrap();
        assert!(asked.contains("\"title\""), "{asked}");
        let mut strict = schema.clone();
        strict["json_schema"]["strict"] = json!(true);
        let refused = output_instruction(None, None, Some(&strict));
        assert_eq!(field(refused).as_deref(), Some("response_format"));
        let text = output_instruction(None, None, Some(&json!({"type": "text"})));
        assert_eq!(text.ok(), Some(None));
        let odd = output_instruction(None, None, Some(&json!({"type": "yaml"})));
        assert_eq!(field(odd).as_deref(), Some("response_format"));
    }
}
