//! The OpenAPI 3.1 document (`GET /api/openapi.json`), built from the route table (every
//! route served is documented, and nothing else) and from the limits the core validates
//! with (its constants and this server's configuration), so the two cannot drift apart.
//! `.ci/fuzz` holds the server to it with schemathesis' response-conformance checks.

pub mod operations;
pub mod schemas;

use refbook_core::Config;
use serde_json::{json, Map, Value};

use crate::router::RouteSpec;
use crate::routes::ROUTES;
use operations::{Operation, Success};
use schemas::schema;

/// Every error code the API answers with.
const ERROR_CODES: &[&str] = &[
    "INVALID_PARAMS",
    "UNAUTHORIZED",
    "QUOTA_EXCEEDED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "REQUEST_TIMEOUT",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMIT",
    "SERVER_ERROR",
    "MODEL_ERROR",
    "UPSTREAM_UNAVAILABLE",
    "SERVER_BUSY",
];

/// What each error status means (the description of its response).
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "INVALID_PARAMS: a missing or invalid field or parameter",
        401 => "UNAUTHORIZED: no, invalid, expired or revoked token or key; wrong credentials",
        402 => "QUOTA_EXCEEDED: the daily token quota is used up",
        404 => "NOT_FOUND: no such resource, or another user's",
        408 => "REQUEST_TIMEOUT: the body did not arrive in time",
        409 => "CONFLICT: taken, already generating, or over a limit",
        413 => "PAYLOAD_TOO_LARGE: the body is over the limit",
        415 => "UNSUPPORTED_MEDIA_TYPE: the body is not of a type the operation takes",
        429 => "RATE_LIMIT: too many requests (see Retry-After)",
        500 => "SERVER_ERROR: something unexpected (logged with the request id)",
        _ => "MODEL_ERROR, UPSTREAM_UNAVAILABLE or SERVER_BUSY (see Retry-After)",
    }
}

/// The error statuses `spec`'s operation can answer.
fn error_statuses(spec: &RouteSpec, operation: &Operation) -> Vec<u16> {
    let mut statuses = vec![400, 500, 503];
    if !spec.is_public() {
        statuses.push(401);
    }
    if operation.body.is_some() || operation.form || !operation.file.is_empty() {
        statuses.extend([408, 413, 415]);
    }
    statuses.extend(operation.errors.iter().copied());
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// The answer for `status` of an operation on `spec`.
fn error_response(spec: &RouteSpec, status: u16) -> Value {
    let openai = spec.pattern.starts_with(crate::routes::OPENAI_PREFIX);
    let mut response = json!({
        "description": error_description(status),
        "content": {"application/json": {"schema": schema(if openai { "OpenAiError" } else { "Error" })}}
    });
    let header = match status {
        401 => Some(("WWW-Authenticate", "Bearer")),
        429 | 503 => Some((
            "Retry-After",
            "Seconds to wait (with 429, and with 503 SERVER_BUSY)",
        )),
        _ => None,
    };
    if let Some((name, description)) = header {
        response["headers"] =
            json!({name: {"description": description, "schema": {"type": "string"}}});
    }
    response
}

/// The success answer of an operation.
fn success_response(success: &Success) -> Value {
    let content = match success {
        Success::Json(body) => json!({"application/json": {"schema": body}}),
        Success::Streamed(body) => json!({
            "application/json": {"schema": body},
            "text/event-stream": {
                "itemSchema": schema("SseEvent"),
                "description": "With Accept: text/event-stream (or stream: true): `id: N` and one `data:` line per event (a ChatChunk as JSON), `: keep-alive` comments, and `data: [DONE]` last"
            },
            "application/x-ndjson": {
                "itemSchema": schema("ChatChunk"),
                "description": "With Accept: application/x-ndjson: one ChatChunk a line"
            }
        }),
        Success::EventStream => json!({
            "text/event-stream": {
                "itemSchema": schema("SseEvent"),
                "description": "`id: N` and one `data:` line per event (a ChatChunk as JSON), `: keep-alive` comments, and `data: [DONE]` last"
            },
            "application/x-ndjson": {
                "itemSchema": schema("ChatChunk"),
                "description": "With Accept: application/x-ndjson: one ChatChunk a line"
            }
        }),
        Success::Image => {
            json!({"image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}}})
        }
        Success::Metrics => json!({
            "application/openmetrics-text": {"schema": {"type": "string"}, "description": "OpenMetrics 1.0 text"}
        }),
    };
    let mut response = json!({"description": "OK", "content": content});
    if let Success::Streamed(_) | Success::EventStream = success {
        response["headers"] = json!({
            "X-Conversation-Id": {"description": "POST /api/chat/stream/: the conversation the turn was recorded in", "schema": {"type": "string"}}
        });
    }
    response
}

/// The path parameters of a pattern, each with its schema.
fn path_parameters(pattern: &str) -> Vec<Value> {
    pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "id" | "mid" => schemas::id(),
                "isbn" => schemas::isbn(),
                _ => json!({"type": "string", "minLength": 1, "pattern": "^[^/]+$"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// The whole document, for a server configured with `config`.
pub fn document(config: &Config) -> Value {
    let limits = operations::Limits::from(config);
    let mut paths = Map::new();
    for spec in ROUTES.iter().filter(|spec| !spec.is_web_page()) {
        let path = if spec.pattern.starts_with("/api/") && !spec.pattern.ends_with(".json") {
            format!("{}/", spec.pattern)
        } else {
            spec.pattern.to_owned()
        };
        let mut item = Map::new();
        for endpoint in spec.endpoints {
            let method = endpoint.verb;
            let doc = (endpoint.doc)(&limits);
            let mut responses = Map::new();
            responses.insert(doc.status.to_string(), success_response(&doc.ok));
            for status in error_statuses(spec, &doc) {
                responses.insert(status.to_string(), error_response(spec, status));
            }
            let operation_id = format!("{}{}", method.as_str().to_ascii_lowercase(), spec.name);
            let mut operation = json!({
                "operationId": operation_id, "summary": doc.summary, "tags": [doc.tag],
                "responses": responses
            });
            if !spec.is_public() {
                operation["security"] = json!([{"bearer": []}, {"apiKey": []}]);
            }
            if let Some(body) = doc.body {
                operation["requestBody"] = json!({"required": doc.body_required, "content": {"application/json": {"schema": body}}});
            }
            if !doc.file.is_empty() {
                let content: Map<String, Value> = doc
                    .file
                    .iter()
                    .map(|t| {
                        (
                            (*t).to_owned(),
                            json!({"schema": {"type": "string", "minLength": 1}}),
                        )
                    })
                    .collect();
                operation["requestBody"] = json!({"required": true, "content": content});
            }
            if doc.form {
                operation["requestBody"] = json!({"required": true, "content": {
                    "application/x-www-form-urlencoded": {"schema": operations::token_form()}
                }});
            }
            let mut parameters = path_parameters(spec.pattern);
            parameters.extend(doc.query);
            if !parameters.is_empty() {
                operation["parameters"] = Value::Array(parameters);
            }
            item.insert(method.as_str().to_ascii_lowercase(), operation);
        }
        paths.insert(path, Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Refbook", "version": env!("CARGO_PKG_VERSION"),
            "description": "Talk with a book: accounts, books, conversations and streaming chat, and an OpenAI-compatible face under /v1. Paths work with or without the trailing slash. Unknown request fields are ignored. The interactive reference is at /docs, a playground at /playground."
        },
        "tags": operations::TAGS.iter().map(|(name, description)| json!({"name": name, "description": description})).collect::<Vec<_>>(),
        "paths": paths,
        "components": schemas::components(ERROR_CODES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_documented_with_its_limits() {
        let mut config = Config::default();
        config.chat.max_message_chars = 1234;
        let doc = document(&config);
        let paths = doc["paths"].as_object().unwrap();
        let documented: usize = paths
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        let served: usize = ROUTES
            .iter()
            .filter(|spec| !spec.is_web_page())
            .map(|spec| spec.endpoints.len())
            .sum();
        assert_eq!(documented, served);
        assert!(!paths.contains_key("/docs") && !paths.contains_key("/playground"));
        let ask = &paths["/api/conversations/{id}/messages/"]["post"];
        let content =
            &ask["requestBody"]["content"]["application/json"]["schema"]["properties"]["content"];
        assert_eq!(content["maxLength"], 1234, "the configured limit");
        let username = &paths["/api/auth/register/"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]["properties"]["username"];
        assert_eq!(
            username["minLength"],
            *refbook_core::accounts::validate::USERNAME_CHARS.start()
        );
        let cover = &paths["/api/books/{isbn}/cover/"]["get"]["responses"]["200"]["content"];
        assert!(cover.get("image/*").is_some());
        let metrics = &paths["/metrics"]["get"]["responses"]["200"]["content"];
        assert!(metrics.get("application/openmetrics-text").is_some());
        let me = &paths["/api/auth/me/"]["get"]["responses"];
        assert!(me.get("401").is_some() && me.get("default").is_none());
    }
}
