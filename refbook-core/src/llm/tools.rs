//! Tools and structured output passed through to a model that takes them (an
//! OpenAI-compatible upstream with `llm_passthrough_tools` on): the client's `tools`,
//! `tool_choice`, `parallel_tool_calls` and `response_format` go into the request as
//! sent, the turns of its tool loop after the reader's question follow the prompt as
//! sent, and the model's `delta.tool_calls` come back as [`ToolCallDelta`]s.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The request fields passed through as the client sent them.
pub const PASSED_FIELDS: &[&str] = &[
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
];

/// What a client asked of tools and output format, for a model that takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolPassthrough {
    /// Those of [`PASSED_FIELDS`] the client sent, as sent.
    pub fields: Map<String, Value>,
    /// The turns after the reader's question, as sent: the model's tool calls (assistant
    /// messages with `tool_calls`) and the tools' results (`tool` messages).
    pub turns: Vec<Value>,
}

impl ToolPassthrough {
    /// Whether there is nothing to pass.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.turns.is_empty()
    }

    /// Adds the fields to a request `body` and the turns after its `messages`.
    pub(super) fn apply(&self, body: &mut Value, messages: &mut Vec<Value>) {
        if let Some(object) = body.as_object_mut() {
            for (name, value) in &self.fields {
                object.insert(name.clone(), value.clone());
            }
        }
        messages.extend(self.turns.iter().cloned());
    }
}

/// A piece of a tool call as the model streams it: the first piece of a call carries
/// its id and function name, the later ones more of its arguments (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of the answer (0 for the first).
    pub index: u32,
    /// The call's id (`call_…`), on its first piece.
    pub id: Option<String>,
    /// The function called, on its first piece.
    pub name: Option<String>,
    /// More of the arguments.
    pub arguments: String,
}

/// A `delta.tool_calls` entry as OpenAI-compatible servers send it.
#[derive(Debug, Deserialize)]
pub(super) struct ToolCallJson {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionJson>,
}

#[derive(Debug, Deserialize)]
struct FunctionJson {
    name: Option<String>,
    /// A string by the standard; a few servers send the object itself.
    arguments: Option<Value>,
}

/// The pieces of one chunk's `delta.tool_calls` (an entry with no index is the call at
/// its position, as servers that send each call whole do).
pub(super) fn tool_call_pieces(calls: Vec<ToolCallJson>) -> impl Iterator<Item = ToolCallDelta> {
    calls.into_iter().zip(0u32..).map(|(call, position)| {
        let (name, arguments) = match call.function {
            Some(FunctionJson { name, arguments }) => (
                name.filter(|n| !n.is_empty()),
                match arguments {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text,
                    Some(other) => other.to_string(),
                },
            ),
            None => (None, String::new()),
        };
        ToolCallDelta {
            index: call.index.unwrap_or(position),
            id: call.id.filter(|id| !id.is_empty()),
            name,
            arguments,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(calls: Value) -> Vec<ToolCallDelta> {
        tool_call_pieces(serde_json::from_value(calls).unwrap()).collect()
    }

    #[test]
    fn streamed_and_whole_tool_calls_are_read() {
        let first = events(json!([{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": ""}}]));
        assert_eq!(
            first,
            [ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("lookup".into()),
                arguments: String::new(),
            }]
        );
        let more = events(json!([{"index": 0, "function": {"arguments": "{\"word\":"}}]));
        assert_eq!(
            more,
            [ToolCallDelta {
                index: 0,
                id: None,
                name: None,
                arguments: "{\"word\":".into(),
            }]
        );
        // Whole calls without an index, arguments as an object.
        let whole = events(json!([
            {"id": "a", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "function": {"name": "g", "arguments": {"x": 1}}}
        ]));
        let second = &whole[1];
        assert_eq!(second.index, 1);
        assert_eq!(second.arguments, "{\"x\":1}");
    }

    #[test]
    fn fields_and_turns_are_added_as_sent() {
        let mut fields = Map::new();
        fields.insert("tool_choice".into(), json!("required"));
        let passthrough = ToolPassthrough {
            fields,
            turns: vec![json!({"role": "tool", "tool_call_id": "c", "content": "42"})],
        };
        let mut body = json!({"model": "m"});
        let mut messages = vec![json!({"role": "user", "content": "q"})];
        passthrough.apply(&mut body, &mut messages);
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1]["tool_call_id"], "c");
    }
}
