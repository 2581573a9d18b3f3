//! The body of `POST /v1/responses` (OpenAI's Responses API) read into a
//! [`ResponseRequest`]: text or message items in, `instructions`, `previous_response_id`,
//! `store`, and the same honest refusals as chat completions.

use refbook_core::chat::{
    is_client_task, BookModel, ClientMessage, ResponseRequest, Sampling, ToolPassthrough,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::openai_request::{asks_json, output_instruction, text_of, Asked, Content, Passed};

/// The kinds of text part the Responses API's input takes.
const INPUT_TEXT_PARTS: &[&str] = &["input_text", "output_text", "text"];

/// `input`: the user's text, or a list of message items.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

/// One input item; only messages (`type` `message` or absent) are taken.
#[derive(Deserialize)]
struct InputItem {
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    content: Option<Content>,
}

/// `text`: the output's format.
#[derive(Deserialize)]
struct TextOptions {
    format: Option<Value>,
}

/// The fields of the Responses API's request Refbook honours or refuses; others
/// (`metadata`, `reasoning`, `truncation`, `user`, …) are accepted and ignored.
#[derive(Deserialize)]
pub struct ResponsesBody {
    model: String,
    input: Input,
    instructions: Option<String>,
    previous_response_id: Option<String>,
    store: Option<bool>,
    stream: Option<bool>,
    max_output_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    text: Option<TextOptions>,
}

/// What the response object echoes of the request.
#[derive(Debug, Clone, Default)]
pub struct Echoed {
    /// `max_output_tokens`.
    pub max_output_tokens: Option<u32>,
    /// `temperature`.
    pub temperature: Option<f32>,
    /// `top_p`.
    pub top_p: Option<f32>,
}

impl ResponsesBody {
    /// The response asked for, whether to stream it, and what the answer echoes;
    /// `task_header`: the request carries the operator's task header; `passthrough`: the
    /// model takes an output format as sent (`text.format` goes to it as
    /// `response_format`; tools are not passed on this face).
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` (OpenAI's `invalid_request_error`) with the parameter named.
    pub fn into_request(
        self,
        task_header: bool,
        passthrough: bool,
    ) -> Result<(ResponseRequest, bool, Echoed), ApiError> {
        if self.max_output_tokens == Some(0) {
            return Err(ApiError::invalid(
                Some("max_output_tokens"),
                "max_output_tokens 须至少为 1",
                "max_output_tokens must be at least 1",
            ));
        }
        // The Responses API names the schema's fields beside `type`.
        let response_format = self.text.and_then(|t| t.format).map(|format| {
            match format.get("type").and_then(Value::as_str) {
                Some("json_schema") => {
                    let mut spec = format;
                    if let Some(fields) = spec.as_object_mut() {
                        fields.remove("type");
                    }
                    json!({"type": "json_schema", "json_schema": spec})
                }
                _ => format,
            }
        });
        let format_instruction = output_instruction(
            &Asked {
                tools: self.tools.as_deref(),
                tool_choice: self.tool_choice.as_ref(),
                response_format: response_format.as_ref(),
            },
            Passed {
                tools: false,
                format: passthrough,
            },
        )
        .map_err(|err| match err.field() {
            Some("response_format") => ApiError::invalid(
                Some("text.format"),
                "text.format 无法满足（见 response_format 的规则）",
                "text.format cannot be honoured: a strict JSON schema cannot be guaranteed, \
                 and the type must be text, json_object or json_schema",
            ),
            _ => err,
        })?;
        let mut input = match self.input {
            Input::Text(text) => vec![ClientMessage::parse("user", text)?],
            Input::Items(items) => items
                .into_iter()
                .map(|item| {
                    if item.kind.as_deref().is_some_and(|kind| kind != "message") {
                        return Err(ApiError::invalid(
                            Some("input"),
                            "input 只接受消息（不支持工具调用等）",
                            "input takes message items only (no tool calls or other items)",
                        ));
                    }
                    let role = item.role.unwrap_or_else(|| "user".to_owned());
                    let text = text_of(item.content, INPUT_TEXT_PARTS, "input")?;
                    Ok(ClientMessage::parse(&role, text)?)
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        };
        if let Some(instruction) = format_instruction {
            input.insert(0, ClientMessage::parse("system", instruction)?);
        }
        let task = task_header || is_client_task(&input);
        let echoed = Echoed {
            max_output_tokens: self.max_output_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
        };
        let request = ResponseRequest {
            model: BookModel::parse(&self.model)?,
            instructions: self.instructions.filter(|i| !i.trim().is_empty()),
            input,
            previous_response_id: self.previous_response_id,
            store: self.store.unwrap_or(true),
            max_tokens: self.max_output_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                stop: Vec::new(),
                json_object: !passthrough && asks_json(response_format.as_ref()),
            },
            task,
            tools: response_format
                .filter(|format| passthrough && !format.is_null())
                .map(|format| ToolPassthrough {
                    fields: [("response_format".to_owned(), format)]
                        .into_iter()
                        .collect(),
                    turns: Vec::new(),
                }),
        };
        Ok((request, self.stream.unwrap_or(false), echoed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<(ResponseRequest, bool, Echoed), ApiError> {
        serde_json::from_value::<ResponsesBody>(body)
            .unwrap()
            .into_request(false, false)
    }

    #[test]
    fn text_and_message_items_are_read_and_other_items_refused() {
        let (request, stream, _) =
            read(json!({"model": "9787536692930", "input": "谁写的？"})).unwrap();
        assert!(!stream && request.store);
        assert_eq!(request.input.len(), 1);
        assert_eq!(request.input[0].content, "谁写的？");
        let items = json!({"model": "9787536692930@author", "store": false, "stream": true, "input": [
            {"role": "developer", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Why?"}]}]});
        let (request, stream, _) = read(items).unwrap();
        assert!(stream && !request.store);
        assert_eq!(request.input.len(), 2);
        let call = json!({"model": "9787536692930", "input": [{"type": "function_call_output", "call_id": "c", "output": "{}"}]});
        assert_eq!(read(call).err().unwrap().field(), Some("input"));
        let image = json!({"model": "9787536692930", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]});
        assert_eq!(read(image).err().unwrap().field(), Some("input"));
    }

    #[test]
    fn strict_formats_and_demanded_tools_are_refused() {
        let strict = json!({"model": "9787536692930", "input": "?", "text": {"format": {
            "type": "json_schema", "name": "a", "schema": {"type": "object"}, "strict": true}}});
        assert_eq!(read(strict).err().unwrap().field(), Some("text.format"));
        let loose = json!({"model": "9787536692930", "input": "?", "text": {"format": {
            "type": "json_schema", "name": "a", "schema": {"type": "object"}}}});
        let (request, _, _) = read(loose).unwrap();
        assert!(request.input[0].content.contains("JSON schema"));
        let required = json!({"model": "9787536692930", "input": "?", "tools": [{"type": "web_search"}], "tool_choice": "required"});
        assert_eq!(read(required).err().unwrap().field(), Some("tool_choice"));
        let allowed = json!({"model": "9787536692930", "input": "?", "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []}});
        assert_eq!(read(allowed).err().unwrap().field(), Some("tool_choice"));
    }
}
