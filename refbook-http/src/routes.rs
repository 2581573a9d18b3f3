//! The route table: one row per path, holding everything about it — its name, pattern,
//! who may call it, and for each method the handler and the OpenAPI documentation. Adding
//! a route is one row here plus its handler. Paths are matched with and without their
//! trailing slash ([`Router`](crate::router::Router)).

use refbook_core::accounts::validate as rules;
use refbook_core::chat::{PERSONA_DESCRIPTION_MAX_CHARS, PERSONA_NAME_MAX_CHARS, TITLE_MAX_CHARS};
use serde_json::json;

use crate::handlers::book_texts::{self, TEXT_MEDIA_TYPES};
use crate::handlers::{
    accounts, api_keys, books, chat, collections, conversations, openai, ops, personas, users,
};
use crate::handlers::{guides, reading};
use crate::openapi::operations::{
    completion_body, credential, json_ok, ok, op, question, responses_body, stream_flag, Operation,
    Success,
};
use crate::openapi::schemas::{
    body, email, free_text, id, isbn, nullable, page_of, password, schema, short_text, username,
    NO_CONTROL,
};
use crate::router::Access::{self, Page, Public, Token};
use crate::router::{Documentation, Endpoint, Handler, RouteSpec, Verb};
use crate::web;

/// The path prefix of the OpenAI-compatible face, whose errors take OpenAI's shape.
pub const OPENAI_PREFIX: &str = "/v1/";

/// A handler function (`async fn(Ctx) -> Result<Response<Body>, ApiError>`) as a
/// [`Handler`].
macro_rules! handler {
    ($function:path) => {
        |ctx| Box::pin($function(ctx))
    };
}

const fn route(
    name: &'static str,
    pattern: &'static str,
    access: Access,
    endpoints: &'static [Endpoint],
) -> RouteSpec {
    RouteSpec {
        name,
        pattern,
        access,
        endpoints,
    }
}

const fn endpoint(verb: Verb, handler: Handler, doc: Documentation) -> Endpoint {
    Endpoint { verb, handler, doc }
}

const fn get(handler: Handler, doc: Documentation) -> Endpoint {
    endpoint(Verb::Get, handler, doc)
}

const fn post(handler: Handler, doc: Documentation) -> Endpoint {
    endpoint(Verb::Post, handler, doc)
}

const fn put(handler: Handler, doc: Documentation) -> Endpoint {
    endpoint(Verb::Put, handler, doc)
}

const fn patch(handler: Handler, doc: Documentation) -> Endpoint {
    endpoint(Verb::Patch, handler, doc)
}

const fn delete(handler: Handler, doc: Documentation) -> Endpoint {
    endpoint(Verb::Delete, handler, doc)
}

/// A browser page or asset (`GET`), outside the OpenAPI document.
const fn page(handler: Handler) -> Endpoint {
    endpoint(Verb::Get, handler, |_| {
        op(
            "A web page (not part of the API)",
            "operations",
            json_ok(json!({})),
        )
    })
}

/// Every route, in the order the OpenAPI document lists them.
#[rustfmt::skip]
pub static ROUTES: &[RouteSpec] = &[
    // `GET /healthz`
    route("Healthz", "/healthz", Public, &[
        get(handler!(ops::healthz), |_| op("Liveness", "operations", json_ok(schema("Health")))),
    ]),
    // `GET /readyz`
    route("Readyz", "/readyz", Public, &[
        get(handler!(ops::readyz), |_| op("Readiness: 200 while the database answers, else 503", "operations", json_ok(schema("Health")))),
    ]),
    // `GET /metrics`
    route("Metrics", "/metrics", Public, &[
        get(handler!(ops::metrics), |_| op("Prometheus metrics (OpenMetrics text)", "operations", Success::Metrics)),
    ]),
    // `GET /api/openapi.json`
    route("OpenApi", "/api/openapi.json", Public, &[
        get(handler!(ops::openapi), |_| op("This document", "operations", json_ok(json!({"type": "object"})))),
    ]),
    // `POST /api/auth/register/`
    route("Register", "/api/auth/register", Public, &[
        post(handler!(accounts::register), |_| op("Register with a username and password", "auth", json_ok(schema("LoginPayload")))
                .body(body(&["username", "password"], json!({
                    "username": username(), "password": password(), "email": email(),
                    "nickname": nullable(short_text(rules::NICKNAME_MAX_CHARS))
                })))
                .errors(&[409, 429])),
    ]),
    // `POST /api/auth/login/`
    route("Login", "/api/auth/login", Public, &[
        post(handler!(accounts::login), |_| op("Log in with a username (or email) and password", "auth", json_ok(schema("LoginPayload")))
                .body(body(&["username", "password"], json!({"username": credential(), "password": credential()})))
                .errors(&[401, 429])),
    ]),
    // `POST /api/auth/token/` (OAuth2 password grant)
    route("Token", "/api/auth/token", Public, &[
        post(handler!(accounts::token), |_| Operation { form: true, ..op("OAuth2 password grant (a form; JSON is accepted too)", "auth", json_ok(schema("TokenGrant"))) }
                .errors(&[401, 408, 413, 415, 429])),
    ]),
    // `POST /api/auth/login/wechat/`
    route("WeChatLogin", "/api/auth/login/wechat", Public, &[
        post(handler!(accounts::login_wechat), |_| op("Log in with a wx.login code (the first login creates the user)", "auth", json_ok(schema("LoginPayload")))
                .body(body(&["code"], json!({"code": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_-]+$"}})))
                .errors(&[401, 429])),
    ]),
    // `POST /api/auth/refresh/`
    route("Refresh", "/api/auth/refresh", Public, &[
        post(handler!(accounts::refresh), |_| op("Exchange a refresh token (rotation; reuse ends the session)", "auth", json_ok(schema("LoginPayload")))
                .body(body(&["refresh_token"], json!({"refresh_token": credential()})))
                .errors(&[401])),
    ]),
    // `POST /api/auth/logout/`
    route("Logout", "/api/auth/logout", Token, &[
        post(handler!(accounts::logout), |_| op("End this session (or the refresh token's; with all: true every session)", "auth", ok())
                .optional_body(body(&[], json!({"refresh_token": nullable(credential()), "all": {"type": ["boolean", "null"]}})))),
    ]),
    // `GET /api/auth/me/`
    route("Me", "/api/auth/me", Token, &[
        get(handler!(accounts::me), |_| op("The current user", "auth", json_ok(schema("User")))),
    ]),
    // `GET|PUT|PATCH /api/user/profile/`
    route("Profile", "/api/user/profile", Token, &[
        get(handler!(users::profile), |_| op("The current user with today's usage", "user", json_ok(schema("Profile")))),
        put(handler!(users::update_profile), |_| op("Change nickname, avatar_url or email: only the fields sent (null or \"\" clears avatar_url and email)", "user", json_ok(schema("User")))
                .optional_body(body(&[], json!({
                    "nickname": nullable(short_text(rules::NICKNAME_MAX_CHARS)),
                    "avatar_url": {"oneOf": [{"type": "string", "maxLength": rules::AVATAR_URL_MAX_BYTES, "pattern": "^(https?://[!-Z^-~]+)?$"}, {"type": "null"}]},
                    "email": email()
                })))
                .errors(&[409])),
        patch(handler!(users::update_profile), |_| op("Change nickname, avatar_url or email: only the fields sent (null or \"\" clears avatar_url and email)", "user", json_ok(schema("User")))
                .optional_body(body(&[], json!({
                    "nickname": nullable(short_text(rules::NICKNAME_MAX_CHARS)),
                    "avatar_url": {"oneOf": [{"type": "string", "maxLength": rules::AVATAR_URL_MAX_BYTES, "pattern": "^(https?://[!-Z^-~]+)?$"}, {"type": "null"}]},
                    "email": email()
                })))
                .errors(&[409])),
    ]),
    // `POST /api/user/password/`
    route("Password", "/api/user/password", Token, &[
        post(handler!(users::change_password), |_| op("Change the password; every other session ends", "user", json_ok(schema("LoginPayload")))
                .body(body(&["old_password", "new_password"], json!({"old_password": credential(), "new_password": password()})))
                .errors(&[401])),
    ]),
    // `DELETE /api/user/`
    route("DeleteAccount", "/api/user", Token, &[
        delete(handler!(users::delete_account), |_| op("Delete the account and all its data (the password, unless a WeChat-only user)", "user", ok())
                .optional_body(body(&[], json!({"password": nullable(credential())})))),
    ]),
    // `GET /api/users/{username}/`
    route("PublicProfile", "/api/users/{username}", Token, &[
        get(handler!(users::public_profile), |_| op("A public profile", "user", json_ok(schema("PublicUser"))).errors(&[404])),
    ]),
    // `GET /api/books/?q=`
    route("Books", "/api/books", Token, &[
        get(handler!(books::search), |_| op("Stored books whose title or author matches ?q=", "books", json_ok(page_of("Book")))
                .paginated()
                .query("q", json!({"type": "string", "maxLength": 100, "pattern": NO_CONTROL}), "words of the title or author")),
    ]),
    // `GET /api/books/{isbn}/`
    route("Book", "/api/books/{isbn}", Token, &[
        get(handler!(books::book), |_| op("A book by ISBN-10 or ISBN-13 (any common form)", "books", json_ok(schema("Book"))).errors(&[404])),
    ]),
    // `GET /api/books/{isbn}/cover/` (no auth)
    route("BookCover", "/api/books/{isbn}/cover", Public, &[
        get(handler!(books::cover), |_| op("The cover image (no token needed)", "books", Success::Image).errors(&[404])),
    ]),
    // `GET|PUT|DELETE /api/books/{isbn}/text/`: the text a reader's questions use
    route("BookText", "/api/books/{isbn}/text", Token, &[
        get(handler!(book_texts::get), |_| op("The text of the book your questions use: your own copy, else the library's", "books", json_ok(schema("BookText")))
                .errors(&[404])),
        put(handler!(book_texts::put), |_| Operation { status: 202, ..op("Upload your own copy of the book's text (the file as the body); it wins over the library's for you", "books", json_ok(schema("BookText"))) }
                .file_body(TEXT_MEDIA_TYPES)
                .errors(&[404, 409, 413, 415, 429])),
        delete(handler!(book_texts::delete), |_| op("Delete your own copy of the book's text", "books", ok()).errors(&[404])),
    ]),
    // `GET /api/books/{isbn}/passages/?q=`: search inside the book's text
    route("Passages", "/api/books/{isbn}/passages", Token, &[
        get(handler!(book_texts::passages), |_| op("The passages of the book's text that best match ?q=, best first", "books", json_ok(schema("Passages")))
                .query("q", json!({"type": "string", "minLength": 1, "maxLength": 1000, "pattern": NO_CONTROL}), "what to look for")
                .query("limit", json!({"type": "integer", "minimum": 1, "default": 5}), "how many (at most 20 are served)")
                .query("all", json!({"type": "boolean", "default": false}), "search past your reading progress too")
                .errors(&[404])),
    ]),
    // `GET /api/books/{isbn}/guide/`: the book's guide (深度解析), cut at the reader's progress
    route("BookGuide", "/api/books/{isbn}/guide", Token, &[
        get(handler!(guides::get), |_| op("The book's guide: a summary of each section you have read, and of the whole book once you have read it all", "books", json_ok(schema("BookGuide"))).errors(&[404])),
    ]),
    // `GET|PUT|DELETE /api/books/{isbn}/progress/`: how far the reader has read
    route("ReadingProgress", "/api/books/{isbn}/progress", Token, &[
        get(handler!(reading::get), |_| op("How far you have read the book (404 when not set)", "books", json_ok(schema("ReadingProgress"))).errors(&[404])),
        put(handler!(reading::put), |_| op("Set how far you have read: answers, searches and the guide use nothing past it", "books", json_ok(schema("ReadingProgress")))
                .body(body(&[], json!({"section": {"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64}, "position": {"type": "integer", "minimum": 0}})))
                .errors(&[404])),
        delete(handler!(reading::delete), |_| op("Clear your reading progress (the whole book again)", "books", ok())),
    ]),
    // `GET|POST /api/personas/`
    route("Personas", "/api/personas", Token, &[
        get(handler!(personas::list), |_| op("Built-in and own personas", "personas", json_ok(json!({"type": "array", "items": schema("Persona")})))),
        post(handler!(personas::create), |_| op("Create a persona", "personas", json_ok(schema("Persona")))
                .body(body(&["name", "description"], json!({"name": short_text(PERSONA_NAME_MAX_CHARS), "description": free_text(PERSONA_DESCRIPTION_MAX_CHARS)})))),
    ]),
    // `GET|DELETE /api/personas/{id}/`
    route("Persona", "/api/personas/{id}", Token, &[
        get(handler!(personas::get), |_| op("A persona", "personas", json_ok(schema("Persona"))).errors(&[404])),
        delete(handler!(personas::delete), |_| op("Delete an own persona (built-ins: 400)", "personas", ok()).errors(&[404])),
    ]),
    // `GET|POST /api/conversations/`
    route("Conversations", "/api/conversations", Token, &[
        get(handler!(conversations::list), |_| op("Conversations, most recently active first", "conversations", json_ok(page_of("Conversation")))
                .paginated()
                .query("isbn", isbn(), "only this book's")),
        post(handler!(conversations::create), |_| op("Start a conversation about a book", "conversations", json_ok(schema("Conversation")))
                .body(body(&["isbn"], json!({"isbn": isbn(), "title": nullable(short_text(TITLE_MAX_CHARS)), "persona_id": nullable(id())})))
                .errors(&[404])),
    ]),
    // `GET|PATCH|DELETE /api/conversations/{id}/`
    route("Conversation", "/api/conversations/{id}", Token, &[
        get(handler!(conversations::get), |_| op("A conversation with its messages", "conversations", json_ok(schema("ConversationDetail"))).errors(&[404])),
        patch(handler!(conversations::update), |_| op("Rename it or change its persona", "conversations", json_ok(schema("Conversation")))
                .optional_body(body(&[], json!({"title": nullable(short_text(TITLE_MAX_CHARS)), "persona_id": nullable(id())})))
                .errors(&[404])),
        delete(handler!(conversations::delete), |_| op("Delete a conversation (a running reply is stopped first)", "conversations", ok()).errors(&[404])),
    ]),
    // `POST /api/conversations/{id}/messages/`
    route("Messages", "/api/conversations/{id}/messages", Token, &[
        post(handler!(chat::post_message), |limits| op("Ask the model (a stream with Accept: text/event-stream or stream: true): the turn; or with generate: false append a message as it is: the message", "chat", Success::Streamed(json!({"oneOf": [schema("Turn"), schema("Message")]})))
                .body(body(&["content"], json!({
                    "content": question(limits), "stream": stream_flag(),
                    "role": {"enum": ["user", "assistant", "system", null]}, "generate": {"type": ["boolean", "null"]}
                })))
                .errors(&[402, 404, 409, 429])),
    ]),
    // `DELETE /api/conversations/{id}/messages/{mid}/`
    route("Message", "/api/conversations/{id}/messages/{mid}", Token, &[
        delete(handler!(conversations::delete_message), |_| op("Delete a message (409 for the reply being generated)", "conversations", ok()).errors(&[404, 409])),
    ]),
    // `POST /api/conversations/{id}/regenerate/`
    route("Regenerate", "/api/conversations/{id}/regenerate", Token, &[
        post(handler!(chat::regenerate), |_| op("Replace the last reply with a new one", "chat", Success::Streamed(schema("Turn")))
                .optional_body(body(&[], json!({"stream": stream_flag()})))
                .errors(&[402, 404, 409, 429])),
    ]),
    // `POST /api/conversations/{id}/stop/`
    route("Stop", "/api/conversations/{id}/stop", Token, &[
        post(handler!(chat::stop), |_| op("Stop the reply being generated; the stored (partial) message", "chat", json_ok(schema("Message"))).errors(&[404])),
    ]),
    // `GET /api/conversations/{id}/stream/`
    route("Stream", "/api/conversations/{id}/stream", Token, &[
        get(handler!(chat::stream), |_| op("Re-attach to the reply after Last-Event-ID or ?cursor=", "chat", Success::EventStream)
                .query("cursor", json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64}), "the position to follow from (0: the start)")
                .errors(&[404])),
    ]),
    // `GET /api/conversations/{id}/reply/`
    route("ReplyPoll", "/api/conversations/{id}/reply", Token, &[
        get(handler!(chat::poll), |_| op("Poll the reply after ?cursor=", "chat", json_ok(schema("ReplyPoll")))
                .query("cursor", json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64}), "the position already shown")
                .errors(&[404])),
    ]),
    // `POST /api/chat/stream/`
    route("ChatStream", "/api/chat/stream", Token, &[
        post(handler!(chat::stateless), |limits| op("Stateless chat (always a stream; X-Conversation-Id names where the turn was recorded)", "chat", Success::EventStream)
                .body(body(&["isbn", "messages"], json!({
                    "isbn": isbn(), "conversation_id": nullable(id()),
                    "messages": {"type": "array", "minItems": 1, "maxItems": limits.max_messages,
                                 "items": body(&["role", "content"], json!({"role": {"enum": ["user", "assistant"]}, "content": free_text(limits.max_message_chars)})),
                                 "description": "the last one is the user's"}
                })))
                .errors(&[402, 404, 409, 429])),
    ]),
    // `GET /api/user/history/`
    route("History", "/api/user/history", Token, &[
        get(handler!(conversations::list), |_| op("Conversations, most recently active first", "conversations", json_ok(page_of("Conversation")))
                .paginated()
                .query("isbn", isbn(), "only this book's")),
    ]),
    // `DELETE /api/user/history/{id}/`
    route("HistoryItem", "/api/user/history/{id}", Token, &[
        delete(handler!(conversations::delete), |_| op("Delete a conversation (a running reply is stopped first)", "conversations", ok()).errors(&[404])),
    ]),
    // `GET|POST /api/user/collections/`
    route("Collections", "/api/user/collections", Token, &[
        get(handler!(collections::list), |_| op("Collected books, newest first", "user", json_ok(page_of("CollectionItem"))).paginated()),
        post(handler!(collections::add), |_| op("Collect a book (adding twice is fine)", "user", json_ok(schema("CollectionItem")))
                .body(body(&["isbn"], json!({"isbn": isbn()})))
                .errors(&[404])),
    ]),
    // `DELETE /api/user/collections/{isbn}/`
    route("CollectionItem", "/api/user/collections/{isbn}", Token, &[
        delete(handler!(collections::remove), |_| op("Remove a collected book", "user", ok()).errors(&[404])),
    ]),
    // `GET|POST /api/user/api-keys/`
    route("ApiKeys", "/api/user/api-keys", Token, &[
        get(handler!(api_keys::list), |_| op("Your personal API keys, newest first (never the keys)", "user", json_ok(json!({"type": "array", "items": schema("ApiKey")})))),
        post(handler!(api_keys::create), |_| Operation { status: 201, ..op("Create a personal API key (rbk_…); the key is shown only in this answer", "user", json_ok(schema("NewApiKey"))) }
                .body(body(&["name"], json!({"name": short_text(rules::API_KEY_NAME_MAX_CHARS)})))
                .errors(&[409])),
    ]),
    // `DELETE /api/user/api-keys/{id}/`
    route("ApiKey", "/api/user/api-keys/{id}", Token, &[
        delete(handler!(api_keys::revoke), |_| op("Revoke a personal API key at once", "user", ok()).errors(&[404])),
    ]),
    // `GET /v1/models` (OpenAI-compatible)
    route("OpenAiModels", "/v1/models", Token, &[
        get(handler!(openai::models), |_| op("The books you have touched as models (each with its personas), most recent first; name: the title", "openai", json_ok(schema("OpenAiModelList")))),
    ]),
    // `GET /v1/models/{model}` (OpenAI-compatible)
    route("OpenAiModel", "/v1/models/{model}", Token, &[
        get(handler!(openai::model), |_| op("One book as a model (an ISBN in any form, optionally @persona)", "openai", json_ok(schema("OpenAiModel"))).errors(&[404])),
    ]),
    // `POST /v1/chat/completions` (OpenAI-compatible)
    route("OpenAiChatCompletions", "/v1/chat/completions", Token, &[
        post(handler!(openai::chat_completions), |limits| op("Chat completions: model = ISBN[@persona]; stream: true for chat.completion.chunk events", "openai", Success::Streamed(schema("OpenAiChatCompletion")))
                .body(completion_body(limits))
                .errors(&[402, 404, 429])),
    ]),
    // `POST /v1/responses` (OpenAI's Responses API)
    route("OpenAiResponses", "/v1/responses", Token, &[
        post(handler!(openai::create_response), |limits| op("Responses API: model = ISBN[@persona]; stream: true for typed response events; kept unless store: false", "openai", Success::Streamed(schema("OpenAiResponse")))
                .body(responses_body(limits))
                .errors(&[402, 404, 429])),
    ]),
    // `GET|DELETE /v1/responses/{response_id}` (OpenAI's Responses API)
    route("OpenAiResponse", "/v1/responses/{response_id}", Token, &[
        get(handler!(openai::get_response), |_| op("One of your kept responses", "openai", json_ok(schema("OpenAiResponse"))).errors(&[404])),
        delete(handler!(openai::delete_response), |_| op("Forget one of your kept responses", "openai", json_ok(schema("OpenAiResponseDeleted"))).errors(&[404])),
    ]),
    // `GET /docs`: the interactive API reference (a web page)
    route("DocsPage", "/docs", Page, &[
        page(handler!(web::docs_page)),
    ]),
    // `GET /docs/{file}`: its assets
    route("DocsAsset", "/docs/{file}", Page, &[
        page(handler!(web::docs_asset)),
    ]),
    // `GET /playground`: talk with a book in the browser (a web page)
    route("Playground", "/playground", Page, &[
        page(handler!(web::playground_page)),
    ]),
    // `GET /playground/{file}`: its assets
    route("PlaygroundAsset", "/playground/{file}", Page, &[
        page(handler!(web::playground_asset)),
    ]),
];
