//! How an operation is documented: summary, tag, body, query parameters, success answer
//! and the error statuses particular to it — the builder each row of the route table
//! ([`routes`](crate::routes)) writes its documentation with.

use refbook_core::chat::{MAX_COMPLETION_MESSAGES, MAX_INSTRUCTIONS_CHARS, MAX_STOP_SEQUENCES};
use refbook_core::Config;
use serde_json::{json, Value};

use super::schemas::{body, free_text, schema, NO_CONTROL};

/// The tags operations are grouped under, in order.
pub const TAGS: &[(&str, &str)] = &[
    ("auth", "Registering, logging in and out, tokens"),
    (
        "user",
        "The signed-in user: profile, password, API keys, history, collection",
    ),
    ("books", "Books by ISBN, covers, search"),
    ("personas", "Who answers: built-in and own personas"),
    ("conversations", "Conversations and their messages"),
    ("chat", "Asking, streaming, stopping, resuming"),
    (
        "openai",
        "The OpenAI-compatible face (errors in OpenAI's shape)",
    ),
    ("operations", "Health, readiness, metrics, this document"),
];

/// The limits of this server that bodies are documented with.
pub struct Limits {
    /// The longest message, in characters.
    pub max_message_chars: usize,
    /// The most messages of a stateless chat request.
    pub max_messages: usize,
}

impl From<&Config> for Limits {
    fn from(config: &Config) -> Self {
        Self {
            max_message_chars: config.chat.max_message_chars,
            max_messages: config.chat.max_messages,
        }
    }
}

/// The success answer's kind.
pub enum Success {
    /// JSON of this schema.
    Json(Value),
    /// JSON of this schema, or a stream (SSE or NDJSON) when asked for.
    Streamed(Value),
    /// Always a stream: SSE, or NDJSON when asked for.
    EventStream,
    /// Image bytes.
    Image,
    /// OpenMetrics text.
    Metrics,
}

/// One operation's documentation.
pub struct Operation {
    /// One line saying what it does.
    pub summary: &'static str,
    /// The tag it is grouped under ([`TAGS`]).
    pub tag: &'static str,
    /// The JSON body's schema, if it takes one.
    pub body: Option<Value>,
    /// Whether the body must be sent.
    pub body_required: bool,
    /// The body is an `application/x-www-form-urlencoded` form (the token grant).
    pub form: bool,
    /// The body is a file sent as it is, of one of these media types.
    pub file: &'static [&'static str],
    /// Its query parameters (OpenAPI parameter objects).
    pub query: Vec<Value>,
    /// What it answers on success.
    pub ok: Success,
    /// The success status.
    pub status: u16,
    /// Error statuses beyond the common ones.
    pub errors: &'static [u16],
}

/// An operation answering `ok` (200), with neither body nor query parameters yet.
pub fn op(summary: &'static str, tag: &'static str, ok: Success) -> Operation {
    Operation {
        summary,
        tag,
        body: None,
        body_required: true,
        form: false,
        file: &[],
        query: Vec::new(),
        ok,
        status: 200,
        errors: &[],
    }
}

impl Operation {
    /// With a required JSON body of this schema.
    pub fn body(self, body: Value) -> Self {
        Self {
            body: Some(body),
            ..self
        }
    }

    /// With an optional JSON body of this schema.
    pub fn optional_body(self, body: Value) -> Self {
        Self {
            body: Some(body),
            body_required: false,
            ..self
        }
    }

    /// With a file as the whole body, of one of these media types.
    pub fn file_body(self, media_types: &'static [&'static str]) -> Self {
        Self {
            file: media_types,
            ..self
        }
    }

    /// With these error statuses beyond the common ones.
    pub fn errors(self, errors: &'static [u16]) -> Self {
        Self { errors, ..self }
    }

    /// With an optional query parameter.
    pub fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query.push(json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description}));
        self
    }

    /// With `limit` and `offset`.
    pub fn paginated(self) -> Self {
        self.query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
            "page size (at most 100)",
        )
        .query(
            "offset",
            json!({"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0}),
            "entries to skip (`skip` is an alias)",
        )
    }
}

/// A JSON answer of this schema.
pub fn json_ok(schema_value: Value) -> Success {
    Success::Json(schema_value)
}

/// The token grant's form (JSON is accepted too).
pub fn token_form() -> Value {
    json!({"type": "object", "required": ["username", "password"], "properties": {
        "grant_type": {"const": "password"}, "username": {"type": "string", "minLength": 1, "pattern": NO_CONTROL},
        "password": {"type": "string", "minLength": 1, "pattern": NO_CONTROL, "format": "password"}
    }})
}

/// A username, password or token as sent to be checked.
pub fn credential() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": NO_CONTROL})
}

/// `{"ok": true}`.
pub fn ok() -> Success {
    json_ok(schema("Ok"))
}

/// A request's optional `stream` flag.
pub fn stream_flag() -> Value {
    json!({"type": ["boolean", "null"]})
}

/// A question's text, within this server's limit.
pub fn question(limits: &Limits) -> Value {
    free_text(limits.max_message_chars)
}

/// `POST /v1/chat/completions`'s body.
pub fn completion_body(limits: &Limits) -> Value {
    let text = free_text(limits.max_message_chars);
    body(
        &["model", "messages"],
        json!({
            "model": {"type": "string", "examples": ["9787536692930", "9787536692930@author"]},
            "messages": {"type": "array", "minItems": 1, "maxItems": MAX_COMPLETION_MESSAGES,
                "description": "the last one is the user's question, or an unfinished assistant answer after it to continue, or (tools passed through) the model's tool calls and the tools' results after it; null content is accepted for assistant turns",
                "items": body(&["role", "content"], json!({
                "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                "content": {"oneOf": [text, {"type": "array", "minItems": 1, "items": body(&["type", "text"], json!({"type": {"const": "text"}, "text": text}))}, {"type": "null"}]},
                "tool_calls": {"type": ["array", "null"], "description": "an assistant turn's tool calls (passed through to the model)", "items": {"type": "object"}},
                "tool_call_id": {"type": ["string", "null"], "description": "a tool turn's call"}
            }))},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": ["boolean", "null"]}}},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX},
            "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "stop": {"oneOf": [
                {"type": "string", "minLength": 1, "maxLength": 64},
                {"type": "array", "maxItems": MAX_STOP_SEQUENCES, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
                {"type": "null"}
            ]},
            "user": {"type": ["string", "null"]},
            "n": {"enum": [1, null]},
            "tools": {"type": ["array", "null"], "description": "passed to the model as sent (a remote model with REFBOOK_LLM_PASSTHROUGH_TOOLS on); otherwise ignored", "items": {"type": "object"}},
            "tool_choice": {"description": "passed to the model as sent; where tools do not pass, none or auto (tools ignored), and required or a named tool is 400", "oneOf": [
                {"enum": ["none", "auto", "required", null]},
                {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
            ]},
            "parallel_tool_calls": {"type": ["boolean", "null"], "description": "passed to the model as sent where tools pass"},
            "response_format": {"description": "passed to the model as sent where tools pass (json_object and non-strict json_schema are asked for in the prompt too); otherwise a strict schema is 400", "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}}}
            ]}
        }),
    )
}

/// `POST /v1/responses`'s body.
pub fn responses_body(limits: &Limits) -> Value {
    let text = free_text(limits.max_message_chars);
    let part = body(
        &["type", "text"],
        json!({"type": {"enum": ["input_text", "output_text", "text"]}, "text": text}),
    );
    body(
        &["model", "input"],
        json!({
            "model": {"type": "string", "examples": ["9787536692930", "9787536692930@author"]},
            "input": {"oneOf": [text, {"type": "array", "minItems": 1, "maxItems": MAX_COMPLETION_MESSAGES,
                "description": "message items; the last is the user's question, or an unfinished assistant answer after it",
                "items": body(&["role", "content"], json!({
                    "type": {"const": "message"},
                    "role": {"enum": ["system", "developer", "user", "assistant"]},
                    "content": {"oneOf": [text, {"type": "array", "minItems": 1, "items": part}]}
                }))}]},
            "instructions": {"oneOf": [free_text(MAX_INSTRUCTIONS_CHARS), {"type": "null"}]},
            "previous_response_id": {"type": ["string", "null"]},
            "store": {"type": ["boolean", "null"]},
            "stream": {"type": ["boolean", "null"]},
            "max_output_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": u32::MAX},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "tools": {"type": ["array", "null"], "description": "ignored: the model cannot call tools", "items": {"type": "object"}},
            "tool_choice": {"description": "none or auto (tools ignored); required or a named tool is 400", "oneOf": [
                {"enum": ["none", "auto", "required", null]},
                {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
            ]},
            "text": {"type": ["object", "null"], "properties": {"format": {"type": ["object", "null"]}}}
        }),
    )
}
