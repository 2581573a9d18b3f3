//! The document's building blocks: field schemas carrying the same limits the core
//! validates with, and the components (every answer's exact shape).

use refbook_core::accounts::validate as rules;
use serde_json::{json, Value};

/// A reference to a component schema.
pub fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `T | null`.
pub fn nullable(value: Value) -> Value {
    json!({"oneOf": [value, {"type": "null"}]})
}

/// A page of `name`s.
pub fn page_of(name: &str) -> Value {
    json!({"allOf": [schema("Page"), {"type": "object", "properties": {"results": {"type": "array", "items": schema(name)}}}]})
}

/// An object with exactly these fields (all required unless listed as optional).
pub fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// A request body object: these fields, plus any others (ignored), as long as no string
/// anywhere holds a forbidden control character (the server refuses those everywhere).
pub fn body(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object", "required": required, "properties": properties,
        "propertyNames": {"pattern": NO_CONTROL},
        "additionalProperties": schema("AnyCleanValue")
    })
}

/// Text with no forbidden control characters (C0 except tab, line feed, carriage return).
pub const NO_CONTROL: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$";

/// Trimmed text of no control characters at all: what short names and titles accept
/// (the server trims surrounding whitespace; the document asks for it already trimmed).
const TRIMMED: &str = "^([^\\s\\u0000-\\u001F\\u007F-\\u009F]([^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F])?)?$";

/// A trimmed short text of 1–`max` characters.
pub fn short_text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": TRIMMED})
}

/// Free text (a question, a description): 1–`max` characters, not only whitespace.
pub fn free_text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max,
           "pattern": "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"})
}

/// A username as the server stores it (letters, digits, `_ . -`). The server also folds
/// full-width forms (NFKC) and accepts letters of every script; the document lists Latin
/// and CJK letters.
pub fn username() -> Value {
    let (min, max) = (rules::USERNAME_CHARS.start(), rules::USERNAME_CHARS.end());
    json!({"type": "string", "minLength": min, "maxLength": max,
           "pattern": format!("^[A-Za-z0-9_.\\-\\u4E00-\\u9FFF]{{{min},{max}}}$")})
}

/// A password of the allowed length, taken as typed.
pub fn password() -> Value {
    json!({"type": "string", "minLength": rules::PASSWORD_CHARS.start(),
           "maxLength": rules::PASSWORD_CHARS.end(), "pattern": NO_CONTROL, "format": "password"})
}

/// An email address (or empty / null: none).
pub fn email() -> Value {
    json!({"oneOf": [
        {"type": "string", "format": "email", "maxLength": rules::EMAIL_MAX_CHARS,
         "pattern": "^[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"},
        {"type": "null"}
    ]})
}

/// An ISBN-10 or -13 in any common dressing. The check digit is verified too, which a
/// schema cannot express: a wrong one is `400`.
pub fn isbn() -> Value {
    json!({"type": "string", "pattern": "^(ISBN[ :]?)?[0-9][0-9 -]{8,15}[0-9Xx]$",
           "examples": ["9787536692930", "978-7-5366-9293-0", "7536692935"]})
}

/// A database id.
pub fn id() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX})
}

/// A timestamp.
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// Every component.
pub fn components(error_codes: &[&str]) -> Value {
    let s = json!({"type": "string"});
    let ns = json!({"type": ["string", "null"]});
    let int = json!({"type": "integer"});
    let nint = json!({"type": ["integer", "null"]});
    let strings = json!({"type": "array", "items": s});
    let user_fields = json!({"id": int, "username": ns, "nickname": s, "avatar_url": ns, "email": ns, "created_at": time()});
    let user_required = [
        "id",
        "username",
        "nickname",
        "avatar_url",
        "email",
        "created_at",
    ];
    let usage = object(
        &["prompt_tokens", "completion_tokens", "total_tokens"],
        json!({"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}),
    );
    let message = object(
        &[
            "id",
            "conversation_id",
            "role",
            "content",
            "reasoning",
            "status",
            "finish_reason",
            "usage",
            "sources",
            "citations",
            "created_at",
        ],
        json!({
            "id": int, "conversation_id": int, "role": {"enum": ["user", "assistant", "system"]},
            "content": s, "reasoning": ns,
            "status": {"enum": ["complete", "generating", "partial", "failed"]},
            "finish_reason": {"enum": ["stop", "length", "content_filter", "cancelled", "interrupted", "error", null]},
            "usage": nullable(schema("Usage")),
            "sources": {"type": "array", "items": schema("Source")},
            "citations": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "created_at": time()
        }),
    );
    let conversation_fields = json!({
        "id": int, "isbn": s, "title": s, "persona_id": nint,
        "book": object(&["title", "author", "cover_url"], json!({"title": s, "author": s, "cover_url": ns})),
        "message_count": int, "last_message": nullable(schema("Message")),
        "created_at": time(), "updated_at": time()
    });
    let conversation_required = [
        "id",
        "isbn",
        "title",
        "persona_id",
        "book",
        "message_count",
        "last_message",
        "created_at",
        "updated_at",
    ];
    let book = object(
        &[
            "isbn",
            "isbn10",
            "title",
            "subtitle",
            "author",
            "authors",
            "translators",
            "publisher",
            "published",
            "pages",
            "introduction",
            "author_intro",
            "cover_url",
            "tags",
            "source",
            "updated_at",
        ],
        json!({
            "isbn": {"type": "string", "pattern": "^97[89][0-9]{10}$"}, "isbn10": ns, "title": s, "subtitle": ns,
            "author": s, "authors": strings, "translators": strings, "publisher": ns, "published": ns,
            "pages": nint, "introduction": ns, "author_intro": ns, "cover_url": ns, "tags": strings,
            "source": {"enum": ["douban", "openlibrary", "googlebooks", "catalog"]}, "updated_at": time()
        }),
    );
    let mut schemas = json!({
        "Error": object(&["code", "message"], json!({
            "code": {"enum": error_codes}, "message": s,
            "details": object(&["field"], json!({"field": s}))
        })),
        "Ok": object(&["ok"], json!({"ok": {"const": true}})),
        "User": object(&user_required, user_fields),
        "PublicUser": object(&["id", "username", "nickname", "avatar_url", "created_at"], json!({"id": int, "username": ns, "nickname": s, "avatar_url": ns, "created_at": time()})),
        "Profile": {"allOf": [schema("User"), object(&["usage"], json!({"usage": object(&["period", "used_tokens", "limit_tokens"], json!({"period": {"const": "day"}, "used_tokens": int, "limit_tokens": nint}))}))]},
        "LoginPayload": object(&["token", "refresh_token", "expires_in", "refresh_expires_in", "user"], json!({"token": s, "refresh_token": s, "expires_in": int, "refresh_expires_in": int, "user": schema("User")})),
        "TokenGrant": object(&["access_token", "token_type", "expires_in", "refresh_token"], json!({"access_token": s, "token_type": {"const": "bearer"}, "expires_in": int, "refresh_token": s})),
        "Book": book,
        "Page": object(&["count", "next", "previous", "results"], json!({"count": int, "next": ns, "previous": ns, "results": {"type": "array"}})),
        "Persona": object(&["id", "key", "name", "description", "builtin", "created_at"], json!({"id": int, "key": ns, "name": s, "description": s, "builtin": {"type": "boolean"}, "created_at": time()})),
        "Usage": usage,
        "Message": message,
        "Conversation": object(&conversation_required, conversation_fields),
        "ConversationDetail": {"allOf": [schema("Conversation"), object(&["messages"], json!({"messages": {"type": "array", "items": schema("Message")}}))]},
        "Turn": object(&["user_message", "assistant_message"], json!({"user_message": nullable(schema("Message")), "assistant_message": schema("Message")})),
        "ReplyPoll": object(&["message_id", "status", "delta", "reasoning_delta", "cursor"], json!({
            "message_id": int, "status": {"enum": ["complete", "generating", "partial", "failed"]},
            "delta": s, "reasoning_delta": s, "cursor": {"type": "integer", "minimum": 0},
            "error": object(&["code", "message"], json!({"code": s, "message": s})),
            "sources": {"type": "array", "items": schema("Source")},
            "citations": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}}
        })),
        "Source": object(&["n", "section", "start", "end", "quote"], json!({
            "n": {"type": "integer", "minimum": 1},
            "section": object(&["index", "title"], json!({"index": int, "title": s})),
            "start": int, "end": int, "quote": s
        })),
        "BookText": object(&["status", "scope", "format", "chars", "sections", "chunks", "progress", "error", "guide"], json!({
            "guide": object(&["status", "done", "total"], json!({"status": {"enum": ["building", "ready", "failed", "off"]}, "done": int, "total": int})),
            "status": {"enum": ["indexing", "ready", "failed"]}, "scope": {"enum": ["library", "mine"]},
            "format": {"enum": ["plain", "markdown", "epub"]}, "chars": int, "chunks": int,
            "sections": {"type": "array", "items": object(&["index", "title", "start", "end"], json!({"index": int, "title": s, "start": int, "end": int}))},
            "progress": {"type": "number", "minimum": 0, "maximum": 1}, "error": ns
        })),
        "Passages": object(&["results"], json!({"results": {"type": "array", "items": object(&["section", "start", "end", "text", "score"], json!({
            "section": object(&["index", "title"], json!({"index": int, "title": s})),
            "start": int, "end": int, "text": s, "score": {"type": "number"}
        }))}})),
        "BookGuide": object(&["status", "book", "sections", "done", "total", "error"], json!({
            "status": {"enum": ["building", "ready", "failed", "off"]},
            "book": {"oneOf": [object(&["summary"], json!({"summary": s})), {"type": "null"}]},
            "sections": {"type": "array", "items": object(&["index", "title", "summary"], json!({"index": int, "title": s, "summary": s}))},
            "done": int, "total": int, "error": ns
        })),
        "ReadingProgress": object(&["section", "title", "position", "chars", "share", "set_by", "updated_at"], json!({
            "section": {"type": ["integer", "null"], "minimum": 0}, "title": ns,
            "position": {"type": ["integer", "null"], "minimum": 0}, "chars": {"type": ["integer", "null"], "minimum": 0},
            "share": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "set_by": {"enum": ["section", "position"]}, "updated_at": time()
        })),
        "CollectionItem": object(&["isbn", "book", "created_at"], json!({"isbn": s, "book": schema("Book"), "created_at": time()})),
        "ChatChunk": chat_chunk(),
        "SseEvent": {
            "description": "One server-sent event: its position and its data (a ChatChunk as JSON, or [DONE] last)",
            "type": "object", "required": ["data"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {"anyOf": [
                    {"const": "[DONE]"},
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": schema("ChatChunk")}
                ]}
            }
        },
        "Health": object(&["status"], json!({"status": s, "database": s})),
        "AnyCleanValue": {
            "description": "Any JSON value whose strings (and keys) hold no control characters",
            "oneOf": [
                {"type": ["null", "boolean", "number"]},
                {"type": "string", "pattern": NO_CONTROL},
                {"type": "array", "items": schema("AnyCleanValue")},
                {"type": "object", "propertyNames": {"pattern": NO_CONTROL}, "additionalProperties": schema("AnyCleanValue")}
            ]
        }
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), key_and_openai_schemas()) {
        all.extend(more);
    }
    json!({
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token from a login"},
            "apiKey": {"type": "http", "scheme": "bearer", "description": "A personal API key (rbk_…) from POST /api/user/api-keys/"}
        },
        "schemas": schemas
    })
}

/// One event of a chat stream (SSE `data:` or an NDJSON line): a chunk, or an error.
fn chat_chunk() -> Value {
    let s = json!({"type": "string"});
    json!({"oneOf": [
        {
            "type": "object", "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": s, "object": {"const": "chat.completion.chunk"}, "created": {"type": "integer"},
                "model": s, "conversation_id": {"type": "integer"}, "message_id": {"type": "integer"},
                "choices": {"type": "array", "items": object(&["index", "delta", "finish_reason"], json!({
                    "index": {"type": "integer"},
                    "delta": {"type": "object", "properties": {"role": {"const": "assistant"}, "content": s, "reasoning_content": s}},
                    "finish_reason": {"enum": ["stop", "length", "content_filter", "cancelled", "interrupted", "error", null]}
                }))},
                "usage": nullable(schema("Usage")),
                "status": {"enum": ["complete", "partial", "failed"]},
                "sources": {"type": "array", "items": schema("Source"), "description": "a grounded reply's passages, on a chunk of its own (empty delta) before the first content"},
                "citations": {"type": "array", "items": {"type": "integer", "minimum": 1}, "description": "on the final chunk of a grounded reply: the sources its answer cites"}
            }
        },
        object(&["error"], json!({"error": object(&["code", "message"], json!({"code": s, "message": s}))}))
    ]})
}

/// The schemas of personal API keys and the OpenAI-compatible face.
fn key_and_openai_schemas() -> Value {
    let s = json!({"type": "string"});
    let int = json!({"type": "integer"});
    json!({
        "ApiKey": object(&["id", "name", "created_at", "last_used_at"], json!({"id": int, "name": s, "created_at": time(), "last_used_at": {"type": ["string", "null"], "format": "date-time"}})),
        "NewApiKey": {"allOf": [schema("ApiKey"), object(&["key"], json!({"key": {"type": "string", "pattern": "^rbk_[A-Za-z0-9_-]{43}$"}}))]},
        "OpenAiModel": object(&["id", "object", "created", "owned_by", "name"], json!({"id": s, "object": {"const": "model"}, "created": int, "owned_by": {"const": "refbook"}, "name": s})),
        "OpenAiModelList": object(&["object", "data"], json!({"object": {"const": "list"}, "data": {"type": "array", "items": schema("OpenAiModel")}})),
        "OpenAiUsage": object(&["prompt_tokens", "completion_tokens", "total_tokens"], json!({"prompt_tokens": int, "completion_tokens": int, "total_tokens": int})),
        "OpenAiChatCompletion": object(&["id", "object", "created", "model", "choices", "usage"], json!({
            "id": s, "object": {"const": "chat.completion"}, "created": int, "model": s,
            "choices": {"type": "array", "items": object(&["index", "message", "finish_reason"], json!({
                "index": int,
                "message": object(&["role", "content"], json!({"role": {"const": "assistant"}, "content": {"type": ["string", "null"]}, "reasoning_content": s,
                    "tool_calls": {"type": "array", "items": object(&["id", "type", "function"], json!({"id": s, "type": {"const": "function"},
                        "function": object(&["name", "arguments"], json!({"name": s, "arguments": s}))}))}})),
                "finish_reason": {"enum": ["stop", "length", "content_filter", "tool_calls"]}
            }))},
            "usage": schema("OpenAiUsage"),
            "sources": {"type": "array", "items": schema("Source")},
            "citations": {"type": "array", "items": {"type": "integer", "minimum": 1}}
        })),
        "OpenAiResponse": object(&["id", "object", "created_at", "status", "model", "output"], json!({
            "id": {"type": "string", "pattern": "^resp_"}, "object": {"const": "response"}, "created_at": int,
            "status": {"enum": ["completed", "incomplete", "in_progress", "failed"]}, "model": s,
            "output": {"type": "array", "items": object(&["type", "id", "role", "content"], json!({
                "type": {"const": "message"}, "id": s, "role": {"const": "assistant"},
                "content": {"type": "array", "items": object(&["type", "text"], json!({"type": {"const": "output_text"}, "text": s}))}
            }))},
            "previous_response_id": {"type": ["string", "null"]}, "store": {"type": "boolean"},
            "usage": {"type": ["object", "null"]},
            "sources": {"type": "array", "items": schema("Source")},
            "citations": {"type": "array", "items": {"type": "integer", "minimum": 1}}
        })),
        "OpenAiResponseDeleted": object(&["id", "object", "deleted"], json!({"id": s, "object": {"const": "response"}, "deleted": {"const": true}})),
        "OpenAiError": object(&["error"], json!({"error": object(&["message", "type", "code"], json!({"message": s, "type": s, "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}))}))
    })
}
