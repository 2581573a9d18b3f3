//! The OpenAPI 3.1 document (`GET /api/openapi.json`), built from the route table so that
//! every route served is documented: [`describe`] must name each route and method.

use http::Method;
use serde_json::{json, Map, Value};

use crate::routes::{Route, ROUTES};

/// What one operation takes and gives.
struct Operation {
    summary: &'static str,
    body: Option<Value>,
    ok: Value,
    streams: bool,
    /// The success status (`200` unless it creates).
    status: &'static str,
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn page_of(name: &str) -> Value {
    json!({"allOf": [schema("Page"), {"properties": {"results": {"type": "array", "items": schema(name)}}}]})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn op(summary: &'static str, body: Option<Value>, ok: Value) -> Operation {
    Operation {
        summary,
        body,
        ok,
        streams: false,
        status: "200",
    }
}

/// The documentation of one route and method.
fn describe(route: Route, method: &Method) -> Operation {
    let string = json!({"type": "string"});
    let ok = schema("Ok");
    match (route, method.as_str()) {
        (Route::DocsPage | Route::DocsAsset | Route::Playground | Route::PlaygroundAsset, _) => {
            op("A web page (not part of the API)", None, string)
        }
        (Route::Healthz, _) => op("Liveness", None, json!({"type": "object"})),
        (Route::Readyz, _) => op("Readiness: 200 while the database answers, else 503", None, json!({"type": "object"})),
        (Route::Metrics, _) => op("Prometheus metrics (text)", None, string),
        (Route::OpenApi, _) => op("This document", None, json!({"type": "object"})),
        (Route::Register, _) => op(
            "Register with a username and password",
            Some(object(&["username", "password"], json!({"username": {"type": "string", "minLength": 3, "maxLength": 32}, "password": {"type": "string", "minLength": 8, "maxLength": 128}, "email": string, "nickname": string}))),
            schema("LoginPayload"),
        ),
        (Route::Login, _) => op(
            "Log in with a username (or email) and password",
            Some(object(&["username", "password"], json!({"username": string, "password": string}))),
            schema("LoginPayload"),
        ),
        (Route::Token, _) => op(
            "OAuth2 password grant (form body: username, password, grant_type=password)",
            None,
            object(&["access_token", "token_type", "expires_in", "refresh_token"], json!({"access_token": string, "token_type": {"const": "bearer"}, "expires_in": {"type": "integer"}, "refresh_token": string})),
        ),
        (Route::WeChatLogin, _) => op(
            "Log in with a wx.login code (first login creates the user)",
            Some(object(&["code"], json!({"code": string}))),
            schema("LoginPayload"),
        ),
        (Route::Refresh, _) => op(
            "Exchange a refresh token (rotation; reuse ends the session)",
            Some(object(&["refresh_token"], json!({"refresh_token": string}))),
            schema("LoginPayload"),
        ),
        (Route::Logout, _) => op(
            "End this session (or the refresh token's, or with all=true every session)",
            Some(object(&[], json!({"refresh_token": string, "all": {"type": "boolean"}}))),
            ok,
        ),
        (Route::Me, _) => op("The current user", None, schema("User")),
        (Route::Profile, "GET") => op("The current user with today's usage", None, schema("Profile")),
        (Route::Profile, _) => op(
            "Change nickname, avatar_url or email (only the fields sent; null clears)",
            Some(object(&[], json!({"nickname": string, "avatar_url": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]}}))),
            schema("User"),
        ),
        (Route::Password, _) => op(
            "Change the password; every other session ends",
            Some(object(&["old_password", "new_password"], json!({"old_password": string, "new_password": string}))),
            schema("LoginPayload"),
        ),
        (Route::DeleteAccount, _) => op(
            "Delete the account and all its data",
            Some(object(&[], json!({"password": string}))),
            ok,
        ),
        (Route::PublicProfile, _) => op("A public profile", None, schema("PublicUser")),
        (Route::Books, _) => op("Stored books whose title or author matches ?q=", None, page_of("Book")),
        (Route::Book, _) => op("A book by ISBN-10 or ISBN-13 (any common form)", None, schema("Book")),
        (Route::BookCover, _) => op("The cover image (no auth)", None, json!({"type": "string", "format": "binary"})),
        (Route::Personas, "GET") => op("Built-in and own personas", None, json!({"type": "array", "items": schema("Persona")})),
        (Route::Personas, _) => op(
            "Create a persona",
            Some(object(&["name", "description"], json!({"name": string, "description": string}))),
            schema("Persona"),
        ),
        (Route::Persona, "GET") => op("A persona", None, schema("Persona")),
        (Route::Persona, _) => op("Delete an own persona (built-ins: 400)", None, ok),
        (Route::Conversations, "GET") | (Route::History, _) => {
            op("Conversations, most recently active first (?isbn= filters)", None, page_of("Conversation"))
        }
        (Route::Conversations, _) => op(
            "Start a conversation about a book",
            Some(object(&["isbn"], json!({"isbn": string, "title": string, "persona_id": {"type": "integer"}}))),
            schema("Conversation"),
        ),
        (Route::Conversation, "GET") => op("A conversation with its messages", None, schema("ConversationDetail")),
        (Route::Conversation, "PATCH") => op(
            "Rename or change persona",
            Some(object(&[], json!({"title": string, "persona_id": {"type": ["integer", "null"]}}))),
            schema("Conversation"),
        ),
        (Route::Conversation, _) | (Route::HistoryItem, _) => op("Delete a conversation", None, ok),
        (Route::Messages, _) => Operation {
            streams: true,
            ..op(
                "Ask the model (SSE with Accept: text/event-stream or stream: true), or append a message with generate: false",
                Some(object(&["content"], json!({"content": string, "stream": {"type": "boolean"}, "role": {"enum": ["user", "assistant", "system"]}, "generate": {"type": "boolean"}}))),
                schema("Turn"),
            )
        },
        (Route::Message, _) => op("Delete a message", None, ok),
        (Route::Regenerate, _) => Operation {
            streams: true,
            ..op("Replace the last reply with a new one", Some(object(&[], json!({"stream": {"type": "boolean"}}))), schema("Turn"))
        },
        (Route::Stop, _) => op("Stop the reply being generated; the partial message", None, schema("Message")),
        (Route::Stream, _) => Operation {
            streams: true,
            ..op("Re-attach to the reply after Last-Event-ID or ?cursor=", None, json!({"type": "string"}))
        },
        (Route::ReplyPoll, _) => op("Poll the reply after ?cursor=", None, schema("ReplyPoll")),
        (Route::ChatStream, _) => Operation {
            streams: true,
            ..op(
                "Stateless chat (always SSE; X-Conversation-Id names where the turn was recorded)",
                Some(object(&["isbn", "messages"], json!({"isbn": string, "conversation_id": {"type": "integer"}, "messages": {"type": "array", "maxItems": 50, "items": object(&["role", "content"], json!({"role": {"enum": ["user", "assistant"]}, "content": string}))}}))),
                json!({"type": "string"}),
            )
        },
        (Route::Collections, "GET") => op("Collected books, newest first", None, page_of("CollectionItem")),
        (Route::Collections, _) => op(
            "Collect a book (idempotent)",
            Some(object(&["isbn"], json!({"isbn": string}))),
            schema("CollectionItem"),
        ),
        (Route::CollectionItem, _) => op("Remove a collected book", None, ok),
        (Route::ApiKeys, "GET") => op("Your personal API keys, newest first (never the keys)", None, json!({"type": "array", "items": schema("ApiKey")})),
        (Route::ApiKeys, _) => Operation {
            status: "201",
            ..op(
                "Create a personal API key (rbk_…); the key is shown only in this answer",
                Some(object(&["name"], json!({"name": {"type": "string", "minLength": 1, "maxLength": 64}}))),
                schema("NewApiKey"),
            )
        },
        (Route::ApiKey, _) => op("Revoke a personal API key at once", None, ok),
        (Route::OpenAiModels, _) => op(
            "OpenAI-compatible: the books of your conversations and collection as models, most recent first",
            None,
            object(&["object", "data"], json!({"object": {"const": "list"}, "data": {"type": "array", "items": schema("OpenAiModel")}})),
        ),
        (Route::OpenAiModel, _) => op(
            "OpenAI-compatible: one book as a model (ISBN in any form, optionally @persona)",
            None,
            schema("OpenAiModel"),
        ),
        (Route::OpenAiChatCompletions, _) => Operation {
            streams: true,
            ..op(
                "OpenAI-compatible chat completions: model = ISBN[@persona]; stream: true for chat.completion.chunk events",
                Some(object(&["model", "messages"], json!({
                    "model": {"type": "string", "examples": ["9787536692930", "9787536692930@author"]},
                    "messages": {"type": "array", "minItems": 1, "maxItems": refbook_core::chat::MAX_COMPLETION_MESSAGES, "items": object(&["role"], json!({"role": {"enum": ["system", "developer", "user", "assistant"]}, "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": object(&["type", "text"], json!({"type": {"const": "text"}, "text": string}))}, {"type": "null"}]}}))},
                    "stream": {"type": ["boolean", "null"]},
                    "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": ["boolean", "null"]}}},
                    "max_tokens": {"type": ["integer", "null"], "minimum": 1},
                    "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
                    "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                    "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "maxItems": refbook_core::chat::MAX_STOP_SEQUENCES, "items": string}, {"type": "null"}]},
                    "user": {"type": ["string", "null"]},
                    "n": {"enum": [1, null]}
                }))),
                schema("OpenAiChatCompletion"),
            )
        },
    }
}

fn components() -> Value {
    let s = json!({"type": "string"});
    let ns = json!({"type": ["string", "null"]});
    let int = json!({"type": "integer"});
    let time = json!({"type": "string", "format": "date-time"});
    let user = json!({"id": int, "username": ns, "nickname": s, "avatar_url": ns, "email": ns, "created_at": time});
    let message = json!({"type": "object", "properties": {"id": int, "conversation_id": int, "role": {"enum": ["user", "assistant", "system"]}, "content": s, "reasoning": ns, "status": {"enum": ["complete", "generating", "partial", "failed"]}, "usage": {"type": ["object", "null"], "properties": {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}}, "created_at": time}});
    let conversation = json!({"id": int, "isbn": s, "title": s, "persona_id": {"type": ["integer", "null"]}, "book": {"type": "object", "properties": {"title": s, "author": s, "cover_url": ns}}, "message_count": int, "last_message": {"oneOf": [schema("Message"), {"type": "null"}]}, "created_at": time, "updated_at": time});
    let mut all = json!({
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "http", "scheme": "bearer", "description": "A personal API key (rbk_…) from POST /api/user/api-keys/"}
        },
        "schemas": {
            "Error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"enum": ["INVALID_PARAMS", "UNAUTHORIZED", "QUOTA_EXCEEDED", "NOT_FOUND", "METHOD_NOT_ALLOWED", "CONFLICT", "PAYLOAD_TOO_LARGE", "RATE_LIMIT", "SERVER_ERROR", "MODEL_ERROR", "UPSTREAM_UNAVAILABLE"]}, "message": s, "details": {"type": "object", "properties": {"field": s}}}},
            "Ok": {"type": "object", "properties": {"ok": {"const": true}}},
            "User": {"type": "object", "properties": user},
            "PublicUser": {"type": "object", "properties": {"id": int, "username": ns, "nickname": s, "avatar_url": ns, "created_at": time}},
            "Profile": {"allOf": [schema("User"), {"properties": {"usage": {"type": "object", "properties": {"period": {"const": "day"}, "used_tokens": int, "limit_tokens": {"type": ["integer", "null"]}}}}}]},
            "LoginPayload": {"type": "object", "properties": {"token": s, "refresh_token": s, "expires_in": int, "refresh_expires_in": int, "user": schema("User")}},
            "Book": {"type": "object", "properties": {"isbn": s, "isbn10": ns, "title": s, "subtitle": ns, "author": s, "authors": {"type": "array", "items": s}, "translators": {"type": "array", "items": s}, "publisher": ns, "published": ns, "pages": {"type": ["integer", "null"]}, "introduction": ns, "author_intro": ns, "cover_url": ns, "tags": {"type": "array", "items": s}, "source": {"enum": ["douban", "openlibrary", "googlebooks", "catalog"]}, "updated_at": time}},
            "Page": {"type": "object", "properties": {"count": int, "next": ns, "previous": ns, "results": {"type": "array"}}},
            "Persona": {"type": "object", "properties": {"id": int, "key": ns, "name": s, "description": s, "builtin": {"type": "boolean"}, "created_at": time}},
            "Message": message,
            "Conversation": {"type": "object", "properties": conversation},
            "ConversationDetail": {"allOf": [schema("Conversation"), {"properties": {"messages": {"type": "array", "items": schema("Message")}}}]},
            "Turn": {"type": "object", "properties": {"user_message": {"oneOf": [schema("Message"), {"type": "null"}]}, "assistant_message": schema("Message")}},
            "ReplyPoll": {"type": "object", "properties": {"message_id": int, "status": s, "delta": s, "reasoning_delta": s, "cursor": int}},
            "CollectionItem": {"type": "object", "properties": {"isbn": s, "book": schema("Book"), "created_at": time}}
        }
    });
    if let (Some(schemas), Value::Object(more)) =
        (all["schemas"].as_object_mut(), key_and_openai_schemas())
    {
        schemas.extend(more);
    }
    all
}

/// The schemas of personal API keys and the OpenAI-compatible face.
fn key_and_openai_schemas() -> Value {
    let s = json!({"type": "string"});
    let ns = json!({"type": ["string", "null"]});
    let int = json!({"type": "integer"});
    let time = json!({"type": "string", "format": "date-time"});
    json!({
            "ApiKey": {"type": "object", "required": ["id", "name", "created_at", "last_used_at"], "properties": {"id": int, "name": s, "created_at": time, "last_used_at": {"type": ["string", "null"], "format": "date-time"}}},
            "NewApiKey": {"allOf": [schema("ApiKey"), {"required": ["key"], "properties": {"key": {"type": "string", "pattern": "^rbk_[A-Za-z0-9_-]{43}$"}}}]},
            "OpenAiModel": {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {"id": s, "object": {"const": "model"}, "created": int, "owned_by": {"const": "refbook"}}},
            "OpenAiUsage": {"type": "object", "properties": {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}},
            "OpenAiChatCompletion": {"type": "object", "required": ["id", "object", "created", "model", "choices", "usage"], "properties": {"id": s, "object": {"const": "chat.completion"}, "created": int, "model": s, "choices": {"type": "array", "items": {"type": "object", "properties": {"index": int, "message": {"type": "object", "properties": {"role": {"const": "assistant"}, "content": s, "reasoning_content": s}}, "finish_reason": {"enum": ["stop", "length", "content_filter"]}}}}, "usage": schema("OpenAiUsage")}},
            "OpenAiError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["message", "type", "code"], "properties": {"message": s, "type": s, "param": ns, "code": s}}}}
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES.iter().filter(|spec| !spec.route.is_web_page()) {
        let path = if spec.pattern.starts_with("/api/") && !spec.pattern.ends_with(".json") {
            format!("{}/", spec.pattern)
        } else {
            spec.pattern.to_owned()
        };
        let mut item = Map::new();
        for method in spec.methods {
            let doc = describe(spec.route, method);
            let mut content = json!({"application/json": {"schema": doc.ok}});
            if doc.streams {
                content["text/event-stream"] = json!({"schema": {"type": "string", "description": "id: N / data: chat.completion.chunk events, then data: [DONE]"}});
            }
            let error = if spec.pattern.starts_with("/v1/") {
                "OpenAiError"
            } else {
                "Error"
            };
            let mut responses = Map::new();
            responses.insert(
                doc.status.to_owned(),
                json!({"description": "OK", "content": content}),
            );
            responses.insert(
                "default".to_owned(),
                json!({"description": "An error", "content": {"application/json": {"schema": schema(error)}}}),
            );
            let operation_id = format!("{}{:?}", method.as_str().to_ascii_lowercase(), spec.route);
            let mut operation = json!({"operationId": operation_id, "summary": doc.summary, "responses": responses});
            if !spec.public {
                operation["security"] = json!([{"bearer": []}, {"apiKey": []}]);
            }
            if let Some(body) = doc.body {
                operation["requestBody"] =
                    json!({"required": true, "content": {"application/json": {"schema": body}}});
            }
            let parameters: Vec<Value> = spec
                .pattern
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            if !parameters.is_empty() {
                operation["parameters"] = Value::Array(parameters);
            }
            item.insert(method.as_str().to_ascii_lowercase(), operation);
        }
        paths.insert(path, Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Refbook", "version": env!("CARGO_PKG_VERSION"), "description": "Talk with a book: accounts, books, conversations and streaming chat. Paths work with or without the trailing slash."},
        "paths": paths,
        "components": components()
    })
}
