//! What each operation takes and gives: summary, tag, body, query parameters, success
//! answer and the error statuses particular to it.

use http::Method;
use refbook_core::accounts::validate as rules;
use refbook_core::chat::{
    MAX_COMPLETION_MESSAGES, MAX_STOP_SEQUENCES, PERSONA_DESCRIPTION_MAX_CHARS,
    PERSONA_NAME_MAX_CHARS, TITLE_MAX_CHARS,
};
use refbook_core::Config;
use serde_json::{json, Value};

use super::schemas::{
    body, email, free_text, id, isbn, nullable, page_of, password, schema, short_text, username,
    NO_CONTROL,
};
use crate::routes::Route;

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
    max_message_chars: usize,
    max_messages: usize,
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
    pub summary: &'static str,
    pub tag: &'static str,
    pub body: Option<Value>,
    pub body_required: bool,
    /// The body is an `application/x-www-form-urlencoded` form (the token grant).
    pub form: bool,
    pub query: Vec<Value>,
    pub ok: Success,
    /// The success status.
    pub status: u16,
    /// Error statuses beyond the common ones.
    pub errors: &'static [u16],
}

fn op(summary: &'static str, tag: &'static str, ok: Success) -> Operation {
    Operation {
        summary,
        tag,
        body: None,
        body_required: true,
        form: false,
        query: Vec::new(),
        ok,
        status: 200,
        errors: &[],
    }
}

impl Operation {
    fn body(self, body: Value) -> Self {
        Self {
            body: Some(body),
            ..self
        }
    }

    fn optional_body(self, body: Value) -> Self {
        Self {
            body: Some(body),
            body_required: false,
            ..self
        }
    }

    fn errors(self, errors: &'static [u16]) -> Self {
        Self { errors, ..self }
    }

    fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query.push(json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description}));
        self
    }

    fn paginated(self) -> Self {
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

fn json_ok(schema_value: Value) -> Success {
    Success::Json(schema_value)
}

/// The token grant's form (JSON is accepted too).
pub fn token_form() -> Value {
    json!({"type": "object", "required": ["username", "password"], "properties": {
        "grant_type": {"const": "password"}, "username": {"type": "string", "minLength": 1, "pattern": NO_CONTROL},
        "password": {"type": "string", "minLength": 1, "pattern": NO_CONTROL, "format": "password"}
    }})
}

fn credential() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": NO_CONTROL})
}

/// The documentation of one route and method.
pub fn describe(route: Route, method: &Method, limits: &Limits) -> Operation {
    let ok = || json_ok(schema("Ok"));
    let stream_flag = json!({"type": ["boolean", "null"]});
    let question = free_text(limits.max_message_chars);
    match (route, method.as_str()) {
        (Route::DocsPage | Route::DocsAsset | Route::Playground | Route::PlaygroundAsset, _) => {
            op("A web page (not part of the API)", "operations", json_ok(json!({})))
        }
        (Route::Healthz, _) => op("Liveness", "operations", json_ok(schema("Health"))),
        (Route::Readyz, _) => op("Readiness: 200 while the database answers, else 503", "operations", json_ok(schema("Health"))),
        (Route::Metrics, _) => op("Prometheus metrics (OpenMetrics text)", "operations", Success::Metrics),
        (Route::OpenApi, _) => op("This document", "operations", json_ok(json!({"type": "object"}))),
        (Route::Register, _) => op("Register with a username and password", "auth", json_ok(schema("LoginPayload")))
            .body(body(&["username", "password"], json!({
                "username": username(), "password": password(), "email": email(),
                "nickname": nullable(short_text(rules::NICKNAME_MAX_CHARS))
            })))
            .errors(&[409, 429]),
        (Route::Login, _) => op("Log in with a username (or email) and password", "auth", json_ok(schema("LoginPayload")))
            .body(body(&["username", "password"], json!({"username": credential(), "password": credential()})))
            .errors(&[401, 429]),
        (Route::Token, _) => Operation { form: true, ..op("OAuth2 password grant (a form; JSON is accepted too)", "auth", json_ok(schema("TokenGrant"))) }
            .errors(&[401, 408, 413, 415, 429]),
        (Route::WeChatLogin, _) => op("Log in with a wx.login code (the first login creates the user)", "auth", json_ok(schema("LoginPayload")))
            .body(body(&["code"], json!({"code": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_-]+$"}})))
            .errors(&[401, 429]),
        (Route::Refresh, _) => op("Exchange a refresh token (rotation; reuse ends the session)", "auth", json_ok(schema("LoginPayload")))
            .body(body(&["refresh_token"], json!({"refresh_token": credential()})))
            .errors(&[401]),
        (Route::Logout, _) => op("End this session (or the refresh token's; with all: true every session)", "auth", ok())
            .optional_body(body(&[], json!({"refresh_token": nullable(credential()), "all": {"type": ["boolean", "null"]}}))),
        (Route::Me, _) => op("The current user", "auth", json_ok(schema("User"))),
        (Route::Profile, "GET") => op("The current user with today's usage", "user", json_ok(schema("Profile"))),
        (Route::Profile, _) => op("Change nickname, avatar_url or email: only the fields sent (null or \"\" clears avatar_url and email)", "user", json_ok(schema("User")))
            .optional_body(body(&[], json!({
                "nickname": nullable(short_text(rules::NICKNAME_MAX_CHARS)),
                "avatar_url": {"oneOf": [{"type": "string", "maxLength": rules::AVATAR_URL_MAX_BYTES, "pattern": "^(https?://[!-Z^-~]+)?$"}, {"type": "null"}]},
                "email": email()
            })))
            .errors(&[409]),
        (Route::Password, _) => op("Change the password; every other session ends", "user", json_ok(schema("LoginPayload")))
            .body(body(&["old_password", "new_password"], json!({"old_password": credential(), "new_password": password()})))
            .errors(&[401]),
        (Route::DeleteAccount, _) => op("Delete the account and all its data (the password, unless a WeChat-only user)", "user", ok())
            .optional_body(body(&[], json!({"password": nullable(credential())}))),
        (Route::PublicProfile, _) => op("A public profile", "user", json_ok(schema("PublicUser"))).errors(&[404]),
        (Route::Books, _) => op("Stored books whose title or author matches ?q=", "books", json_ok(page_of("Book")))
            .paginated()
            .query("q", json!({"type": "string", "maxLength": 100, "pattern": NO_CONTROL}), "words of the title or author"),
        (Route::Book, _) => op("A book by ISBN-10 or ISBN-13 (any common form)", "books", json_ok(schema("Book"))).errors(&[404]),
        (Route::BookCover, _) => op("The cover image (no token needed)", "books", Success::Image).errors(&[404]),
        (Route::Personas, "GET") => op("Built-in and own personas", "personas", json_ok(json!({"type": "array", "items": schema("Persona")}))),
        (Route::Personas, _) => op("Create a persona", "personas", json_ok(schema("Persona")))
            .body(body(&["name", "description"], json!({"name": short_text(PERSONA_NAME_MAX_CHARS), "description": free_text(PERSONA_DESCRIPTION_MAX_CHARS)}))),
        (Route::Persona, "GET") => op("A persona", "personas", json_ok(schema("Persona"))).errors(&[404]),
        (Route::Persona, _) => op("Delete an own persona (built-ins: 400)", "personas", ok()).errors(&[404]),
        (Route::Conversations, "GET") | (Route::History, _) => op("Conversations, most recently active first", "conversations", json_ok(page_of("Conversation")))
            .paginated()
            .query("isbn", isbn(), "only this book's"),
        (Route::Conversations, _) => op("Start a conversation about a book", "conversations", json_ok(schema("Conversation")))
            .body(body(&["isbn"], json!({"isbn": isbn(), "title": nullable(short_text(TITLE_MAX_CHARS)), "persona_id": nullable(id())})))
            .errors(&[404]),
        (Route::Conversation, "GET") => op("A conversation with its messages", "conversations", json_ok(schema("ConversationDetail"))).errors(&[404]),
        (Route::Conversation, "PATCH") => op("Rename it or change its persona", "conversations", json_ok(schema("Conversation")))
            .optional_body(body(&[], json!({"title": nullable(short_text(TITLE_MAX_CHARS)), "persona_id": nullable(id())})))
            .errors(&[404]),
        (Route::Conversation, _) | (Route::HistoryItem, _) => op("Delete a conversation (a running reply is stopped first)", "conversations", ok()).errors(&[404]),
        (Route::Messages, _) => op("Ask the model (a stream with Accept: text/event-stream or stream: true): the turn; or with generate: false append a message as it is: the message", "chat", Success::Streamed(json!({"oneOf": [schema("Turn"), schema("Message")]})))
            .body(body(&["content"], json!({
                "content": question, "stream": stream_flag,
                "role": {"enum": ["user", "assistant", "system", null]}, "generate": {"type": ["boolean", "null"]}
            })))
            .errors(&[402, 404, 409, 429]),
        (Route::Message, _) => op("Delete a message (409 for the reply being generated)", "conversations", ok()).errors(&[404, 409]),
        (Route::Regenerate, _) => op("Replace the last reply with a new one", "chat", Success::Streamed(schema("Turn")))
            .optional_body(body(&[], json!({"stream": stream_flag})))
            .errors(&[402, 404, 409, 429]),
        (Route::Stop, _) => op("Stop the reply being generated; the stored (partial) message", "chat", json_ok(schema("Message"))).errors(&[404]),
        (Route::Stream, _) => op("Re-attach to the reply after Last-Event-ID or ?cursor=", "chat", Success::EventStream)
            .query("cursor", json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64}), "the position to follow from (0: the start)")
            .errors(&[404]),
        (Route::ReplyPoll, _) => op("Poll the reply after ?cursor=", "chat", json_ok(schema("ReplyPoll")))
            .query("cursor", json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64}), "the position already shown")
            .errors(&[404]),
        (Route::ChatStream, _) => op("Stateless chat (always a stream; X-Conversation-Id names where the turn was recorded)", "chat", Success::EventStream)
            .body(body(&["isbn", "messages"], json!({
                "isbn": isbn(), "conversation_id": nullable(id()),
                "messages": {"type": "array", "minItems": 1, "maxItems": limits.max_messages,
                             "items": body(&["role", "content"], json!({"role": {"enum": ["user", "assistant"]}, "content": free_text(limits.max_message_chars)})),
                             "description": "the last one is the user's"}
            })))
            .errors(&[402, 404, 409, 429]),
        (Route::Collections, "GET") => op("Collected books, newest first", "user", json_ok(page_of("CollectionItem"))).paginated(),
        (Route::Collections, _) => op("Collect a book (adding twice is fine)", "user", json_ok(schema("CollectionItem")))
            .body(body(&["isbn"], json!({"isbn": isbn()})))
            .errors(&[404]),
        (Route::CollectionItem, _) => op("Remove a collected book", "user", ok()).errors(&[404]),
        (Route::ApiKeys, "GET") => op("Your personal API keys, newest first (never the keys)", "user", json_ok(json!({"type": "array", "items": schema("ApiKey")}))),
        (Route::ApiKeys, _) => Operation { status: 201, ..op("Create a personal API key (rbk_…); the key is shown only in this answer", "user", json_ok(schema("NewApiKey"))) }
            .body(body(&["name"], json!({"name": short_text(rules::API_KEY_NAME_MAX_CHARS)})))
            .errors(&[409]),
        (Route::ApiKey, _) => op("Revoke a personal API key at once", "user", ok()).errors(&[404]),
        (Route::OpenAiModels, _) => op("The books of your conversations and collection as models, most recent first", "openai", json_ok(schema("OpenAiModelList"))),
        (Route::OpenAiModel, _) => op("One book as a model (an ISBN in any form, optionally @persona)", "openai", json_ok(schema("OpenAiModel"))).errors(&[404]),
        (Route::OpenAiChatCompletions, _) => op("Chat completions: model = ISBN[@persona]; stream: true for chat.completion.chunk events", "openai", Success::Streamed(schema("OpenAiChatCompletion")))
            .body(completion_body(limits))
            .errors(&[402, 404, 429]),
    }
}

/// `POST /v1/chat/completions`'s body.
fn completion_body(limits: &Limits) -> Value {
    let text = free_text(limits.max_message_chars);
    body(
        &["model", "messages"],
        json!({
            "model": {"type": "string", "examples": ["9787536692930", "9787536692930@author"]},
            "messages": {"type": "array", "minItems": 1, "maxItems": MAX_COMPLETION_MESSAGES,
                "description": "the last one is the user's; null content is accepted for assistant turns",
                "items": body(&["role", "content"], json!({
                "role": {"enum": ["system", "developer", "user", "assistant"]},
                "content": {"oneOf": [text, {"type": "array", "minItems": 1, "items": body(&["type", "text"], json!({"type": {"const": "text"}, "text": text}))}]}
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
            "n": {"enum": [1, null]}
        }),
    )
}
