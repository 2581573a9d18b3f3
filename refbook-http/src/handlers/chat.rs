//! Asking the model: `messages/`, `regenerate/`, `stop/`, `stream/`, `reply/` and the
//! stateless `/api/chat/stream/`. Everything that can fail is checked before the first
//! byte, so those failures are ordinary JSON errors; after that the SSE stream reports.

use http::{HeaderValue, Response};
use refbook_core::books::Isbn;
use refbook_core::chat::{ClientMessage, ReplyEvent, Role, Started};
use refbook_core::Error;
use serde::Deserialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::body::{ok_json, Body};
use crate::ctx::Ctx;
use crate::sse;
use refbook_core::domain::ConversationId;

/// The configured keep-alive interval of SSE streams.
fn keep_alive(ctx: &Ctx) -> std::time::Duration {
    std::time::Duration::from_secs(ctx.app.settings().sse_keepalive_secs.max(1))
}

/// The stream of a started reply (SSE or NDJSON), or (not streaming) the finished turn
/// as JSON.
async fn answer(
    ctx: &Ctx,
    started: Started,
    stream: Option<sse::Format>,
) -> Result<Response<Body>, ApiError> {
    if let Some(format) = stream {
        return Ok(sse::response_as(
            format,
            started.reply.listen(0),
            keep_alive(ctx),
            ctx.app.metrics().stream_opened(),
        ));
    }
    let assistant = ctx.refbook().answering().stored_reply(&started).await?;
    Ok(ok_json(&json!({
        "user_message": started.user_message,
        "assistant_message": assistant,
    })))
}

#[derive(Deserialize)]
struct PostMessage {
    content: String,
    stream: Option<bool>,
    role: Option<String>,
    generate: Option<bool>,
}

/// `POST /api/conversations/{id}/messages/`: ask the model (streamed or waited for), or
/// with `generate: false` append a message as it is.
pub async fn post_message(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let body: PostMessage = ctx.json().await?;
    let user = ctx.user()?.id();
    if body.generate == Some(false) {
        let role = Role::parse(body.role.as_deref().unwrap_or("user")).ok_or_else(|| {
            ApiError::invalid(
                Some("role"),
                "role 须为 user、assistant 或 system",
                "role must be user, assistant or system",
            )
        })?;
        let message = ctx
            .refbook()
            .conversations()
            .append_message(user, id, role, &body.content)
            .await?;
        return Ok(ok_json(&message));
    }
    if body.role.as_deref().is_some_and(|r| r != "user") {
        return Err(ApiError::invalid(
            Some("role"),
            "向模型提问时 role 只能是 user",
            "Questions to the model have role user",
        ));
    }
    ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    let started = ctx
        .refbook()
        .answering()
        .ask(user, id, &body.content)
        .await?;
    let stream = sse::Format::wanted(&ctx.parts.headers, body.stream);
    answer(&ctx, started, stream).await
}

#[derive(Deserialize)]
struct StreamFlag {
    stream: Option<bool>,
}

/// `POST /api/conversations/{id}/regenerate/`
pub async fn regenerate(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let body: StreamFlag = ctx.json().await?;
    let user = ctx.user()?.id();
    ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    let started = ctx.refbook().answering().regenerate(user, id).await?;
    let stream = sse::Format::wanted(&ctx.parts.headers, body.stream);
    answer(&ctx, started, stream).await
}

/// `POST /api/conversations/{id}/stop/`: the stored partial message.
pub async fn stop(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let message = ctx.refbook().answering().stop(ctx.user()?.id(), id).await?;
    Ok(ok_json(&message))
}

/// `GET /api/conversations/{id}/stream/`: re-attach after `Last-Event-ID` / `?cursor=`.
pub async fn stream(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let position = sse::resume_position(&ctx.parts.headers, ctx.query_param("cursor").as_deref())?;
    let reply = ctx
        .refbook()
        .answering()
        .attach(ctx.user()?.id(), id)
        .await?;
    let format = sse::Format::wanted(&ctx.parts.headers, None).unwrap_or(sse::Format::Sse);
    Ok(sse::response_as(
        format,
        reply.listen(position),
        keep_alive(&ctx),
        ctx.app.metrics().stream_opened(),
    ))
}

/// `GET /api/conversations/{id}/reply/?cursor=N`: polling for clients that cannot stream.
pub async fn poll(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let cursor = sse::parse_position(ctx.query_param("cursor").as_deref())?;
    let reply = ctx
        .refbook()
        .answering()
        .attach(ctx.user()?.id(), id)
        .await?;
    let (events, _) = reply.events_after(cursor);
    let (mut delta, mut reasoning_delta) = (String::new(), String::new());
    let mut position = cursor;
    let mut error = None;
    for (at, event) in events {
        position = at;
        match event {
            ReplyEvent::Content(text) => delta.push_str(&text),
            ReplyEvent::Reasoning(text) => reasoning_delta.push_str(&text),
            ReplyEvent::Error { code, message } => error = Some((code, message)),
            ReplyEvent::Start | ReplyEvent::Sources(_) | ReplyEvent::Finish { .. } => {}
        }
    }
    let grounding = reply.grounding();
    let mut body = json!({
        "message_id": reply.message_id(),
        "status": reply.status(),
        "delta": delta,
        "reasoning_delta": reasoning_delta,
        "cursor": position,
    });
    if let Some(sources) = grounding.sources {
        body["sources"] = json!(&*sources);
        body["citations"] = json!(grounding.citations.as_deref());
    }
    if let Some((code, message)) = error {
        body["error"] = json!({"code": code, "message": &*message});
    }
    Ok(ok_json(&body))
}

/// A message as the wire carries it, parsed by [`ClientMessage::parse`].
#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: String,
}

#[derive(Deserialize)]
struct Stateless {
    isbn: String,
    messages: Vec<WireMessage>,
    conversation_id: Option<ConversationId>,
}

/// `POST /api/chat/stream/`: the mini-program's original endpoint; always streams, and
/// names the conversation the turn was recorded in (`X-Conversation-Id`).
pub async fn stateless(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: Stateless = ctx.json().await?;
    let isbn = Isbn::parse(&body.isbn).map_err(Error::from)?;
    let user = ctx.user()?.id();
    ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    let messages = body
        .messages
        .into_iter()
        .map(|m| ClientMessage::parse(&m.role, m.content))
        .collect::<Result<Vec<_>, Error>>()?;
    let (conversation_id, started) = ctx
        .refbook()
        .answering()
        .stateless(user, &isbn, messages, body.conversation_id)
        .await?;
    let format = sse::Format::wanted(&ctx.parts.headers, None).unwrap_or(sse::Format::Sse);
    let mut response = sse::response_as(
        format,
        started.reply.listen(0),
        keep_alive(&ctx),
        ctx.app.metrics().stream_opened(),
    );
    response.headers_mut().insert(
        "x-conversation-id",
        HeaderValue::from(conversation_id.get()),
    );
    Ok(response)
}
