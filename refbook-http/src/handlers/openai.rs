//! The OpenAI-compatible face: `GET /v1/models`, `GET /v1/models/{model}` and
//! `POST /v1/chat/completions`, where each book (optionally `@persona`) is a model.
//! Errors take OpenAI's shape (see `Pipeline::handle`).

use http::Response;
use refbook_core::chat::{BookModel, ClientMessage, CompletionRequest, Sampling};
use refbook_core::timestamp::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::body::{ok_json, Body};
use crate::ctx::Ctx;
use crate::openai_wire::{self, CompletionMeta};

/// The most models `GET /v1/models` lists.
const MAX_LISTED_MODELS: i64 = 1000;

fn model_object(id: &str, created: Timestamp) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": created.unix_seconds(),
        "owned_by": "refbook",
    })
}

/// `GET /v1/models`: the books of the caller's conversations and collection, most
/// recently active first (`created`: that activity, Unix seconds).
pub async fn models(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let books = ctx
        .refbook()
        .answering()
        .recent_books(ctx.user()?.id(), MAX_LISTED_MODELS)
        .await?;
    let data: Vec<Value> = books
        .iter()
        .map(|(isbn, at)| model_object(isbn.as_str(), *at))
        .collect();
    Ok(ok_json(&json!({"object": "list", "data": data})))
}

/// `GET /v1/models/{model}`: any book the lookup chain finds, with an optional persona
/// (`created`: when Refbook last fetched the book).
pub async fn model(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let model = BookModel::parse(ctx.params.get("model"))?;
    let book = ctx
        .refbook()
        .answering()
        .book_model(ctx.user()?.id(), &model)
        .await?;
    Ok(ok_json(&model_object(&model.to_string(), book.updated_at)))
}

/// A message's `content`: a string, or OpenAI's array of content parts (text only).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Option<Content>,
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

/// The fields of OpenAI's request Refbook honours; others (tools, logprobs, `user` — the
/// model is told Refbook's own user id —, …) are accepted and ignored, as
/// OpenAI-compatible servers commonly do.
#[derive(Deserialize)]
struct ChatCompletionBody {
    model: String,
    messages: Vec<WireMessage>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    stop: Option<Stop>,
    n: Option<u32>,
}

/// The text of a message (`None` content: empty).
fn text_of(content: Option<Content>) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(text)) => Ok(text),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(piece)) => text.push_str(&piece),
                    _ => {
                        return Err(ApiError::invalid(
                            Some("messages"),
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
    fn into_request(self) -> Result<(CompletionRequest, bool, bool), ApiError> {
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
        let messages = self
            .messages
            .into_iter()
            .map(|m| Ok(ClientMessage::parse(&m.role, text_of(m.content)?)?))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(one)) => vec![one],
            Some(Stop::Many(many)) => many,
        };
        let request = CompletionRequest {
            model: BookModel::parse(&self.model)?,
            messages,
            max_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                stop,
            },
        };
        let include_usage = self
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok((request, self.stream.unwrap_or(false), include_usage))
    }
}

/// `POST /v1/chat/completions`: streamed (`stream: true`) or one `chat.completion`.
pub async fn chat_completions(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: ChatCompletionBody = ctx.json().await?;
    let (request, stream, include_usage) = body.into_request()?;
    let user = ctx.user()?.id();
    ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    let meta = CompletionMeta::new(request.model.to_string());
    let completion = ctx.refbook().answering().complete(user, request).await?;
    if stream {
        let keep_alive =
            std::time::Duration::from_secs(ctx.app.settings().sse_keepalive_secs.max(1));
        return Ok(openai_wire::stream_response(
            meta,
            completion.events,
            &completion.sources,
            include_usage,
            ctx.language,
            keep_alive,
            ctx.app.metrics().stream_opened(),
        ));
    }
    let answer = openai_wire::collect(&meta, completion.events, &completion.sources).await?;
    Ok(ok_json(&answer))
}
