//! The body of `POST /v1/chat/completions` as OpenAI's clients send it, read into a
//! [`CompletionRequest`]: the fields Refbook honours, and honest refusals of what it cannot
//! do (a required tool call, a strict JSON schema) rather than a silent plain-text answer.

use refbook_core::chat::{
    is_client_task, BookModel, ClientMessage, CompletionRequest, Sampling, ToolPassthrough,
    MAX_COMPLETION_MESSAGES,
};
use serde::Deserialize;
use serde_json::{Map, Value};

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
    /// An assistant message's calls of the client's tools.
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    /// A `tool` message's call.
    #[serde(default)]
    tool_call_id: Option<String>,
}

impl WireMessage {
    /// Whether it belongs to a tool loop: the model's calls, or a tool's result.
    fn is_tool_turn(&self) -> bool {
        matches!(self.role.as_str(), "tool" | "function")
            || (self.role == "assistant" && self.tool_calls.as_ref().is_some_and(|c| !c.is_empty()))
    }
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
    messages: Vec<Value>,
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
    parallel_tool_calls: Option<Value>,
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
    /// the stream; `task_header`: the request carries the operator's task header;
    /// `passthrough`: the model takes the client's tools and output format as sent.
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` (OpenAI's `invalid_request_error`) with the parameter named.
    pub fn into_request(
        self,
        task_header: bool,
        passthrough: bool,
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
            &Asked {
                tools: self.tools.as_deref(),
                tool_choice: self.tool_choice.as_ref(),
                response_format: self.response_format.as_ref(),
            },
            Passed {
                tools: passthrough,
                format: passthrough,
            },
        )?;
        let (mut messages, turns) = if passthrough {
            split_tool_loop(self.messages)?
        } else {
            let messages = self
                .messages
                .into_iter()
                .map(|raw| {
                    let m = wire_message(&raw)?;
                    Ok(ClientMessage::parse(
                        &m.role,
                        text_of(m.content, CHAT_TEXT_PARTS, "messages")?,
                    )?)
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            (messages, Vec::new())
        };
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
        let json_object = !passthrough && asks_json(self.response_format.as_ref());
        let tools = passthrough.then(|| {
            let asked = [
                ("tools", self.tools.map(Value::Array)),
                ("tool_choice", self.tool_choice),
                ("parallel_tool_calls", self.parallel_tool_calls),
                ("response_format", self.response_format),
            ];
            let fields: Map<String, Value> = asked
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((name.to_owned(), value.filter(|v| !v.is_null())?))
                })
                .collect();
            ToolPassthrough { fields, turns }
        });
        let request = CompletionRequest {
            model: BookModel::parse(&self.model)?,
            messages,
            max_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                stop,
                json_object,
            },
            task,
            tools: tools.filter(|tools| !tools.is_empty()),
        };
        let include_usage = self
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok((request, self.stream.unwrap_or(false), include_usage))
    }
}

/// One of `messages` read (a message that is not an object with a `role` is refused).
fn wire_message(raw: &Value) -> Result<WireMessage, ApiError> {
    WireMessage::deserialize(raw).map_err(|_| {
        ApiError::invalid(
            Some("messages"),
            "messages 的每一项须为带 role 和 content 的对象",
            "each of messages must be an object with a role and content",
        )
    })
}

/// The exchange of a request whose tools pass through, and the turns of its tool loop:
/// the model's calls and the tools' results after the last user message go to the
/// model as sent (after the book's prompt and the question); earlier ones, from turns
/// already answered, are kept as text in the history.
fn split_tool_loop(raw: Vec<Value>) -> Result<(Vec<ClientMessage>, Vec<Value>), ApiError> {
    // The turns do not reach the exchange's own check of the count.
    if raw.len() > MAX_COMPLETION_MESSAGES {
        return Err(ApiError::invalid(
            Some("messages"),
            format!("messages 须为 1–{MAX_COMPLETION_MESSAGES} 条"),
            format!("messages must hold 1–{MAX_COMPLETION_MESSAGES} entries"),
        ));
    }
    let parsed = raw
        .iter()
        .map(wire_message)
        .collect::<Result<Vec<_>, ApiError>>()?;
    let question = parsed.iter().rposition(|m| m.role == "user");
    let loop_from = question
        .map(|at| at + 1)
        .filter(|from| parsed[*from..].iter().any(WireMessage::is_tool_turn))
        .unwrap_or(parsed.len());
    let mut messages = Vec::with_capacity(loop_from);
    let mut turns = Vec::new();
    for (at, (m, raw)) in parsed.into_iter().zip(raw).enumerate() {
        if at >= loop_from {
            if !matches!(m.role.as_str(), "assistant" | "tool" | "function") {
                return Err(ApiError::invalid(
                    Some("messages"),
                    "用户提问之后只能是工具调用和工具结果",
                    "after the user's last message only tool calls and tool results may follow",
                ));
            }
            turns.push(raw);
            continue;
        }
        let tool_turn = m.is_tool_turn();
        let text = text_of(m.content, CHAT_TEXT_PARTS, "messages")?;
        if !tool_turn {
            messages.push(ClientMessage::parse(&m.role, text)?);
            continue;
        }
        // An earlier tool loop, told in words.
        let mut told = text;
        for call in m.tool_calls.unwrap_or_default() {
            let name = call.pointer("/function/name").and_then(Value::as_str);
            let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
            told.push_str(&format!(
                "\n[called tool {}({})]",
                name.unwrap_or("?"),
                arguments.unwrap_or("")
            ));
        }
        if let Some(id) = &m.tool_call_id {
            told = format!("[tool result {id}] {told}");
        } else if m.role != "assistant" {
            told = format!("[tool result] {told}");
        }
        messages.push(ClientMessage::parse("assistant", told.trim().to_owned())?);
    }
    Ok((messages, turns))
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

/// Whether `response_format` asks for a JSON answer (`json_object`, or `json_schema`,
/// whose answer is an object), which a model run in this process keeps to.
pub(crate) fn asks_json(response_format: Option<&Value>) -> bool {
    matches!(
        response_format
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    )
}

/// What a request asks of tools and output.
pub(crate) struct Asked<'a> {
    /// `tools`.
    pub tools: Option<&'a [Value]>,
    /// `tool_choice`.
    pub tool_choice: Option<&'a Value>,
    /// `response_format` (chat completions' shape).
    pub response_format: Option<&'a Value>,
}

/// What the model takes as sent.
#[derive(Clone, Copy)]
pub(crate) struct Passed {
    /// `tools` and `tool_choice`: then no demand of a call is refused.
    pub tools: bool,
    /// `response_format`: then a strict schema is the model's to keep.
    pub format: bool,
}

/// What the model is told for `response_format` (`None`: plain text). `json_object` and
/// a non-strict `json_schema` are asked for in the prompt too; a strict schema is
/// refused unless the format passes through, as is a tool call the request demands
/// unless tools pass through.
pub(crate) fn output_instruction(
    asked: &Asked<'_>,
    passed: Passed,
) -> Result<Option<String>, ApiError> {
    let Asked {
        tools,
        tool_choice,
        response_format,
    } = *asked;
    if !passed.tools && (tools.is_some_and(|tools| !tools.is_empty()) || tool_choice.is_some()) {
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
            let strict = spec.get("strict").and_then(Value::as_bool) == Some(true);
            if strict && passed.format {
                // The model keeps to the schema itself.
                return Ok(None);
            }
            if strict {
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
#[path = "openai_request_tests.rs"]
mod tests;
