//! The OpenAI-compatible face: `GET /v1/models`, `GET /v1/models/{model}`,
//! `POST /v1/chat/completions` and the Responses API (`POST /v1/responses`,
//! `GET`/`DELETE /v1/responses/{id}`), where each book (optionally `@persona`) is a model.
//! Errors take OpenAI's shape (see `Pipeline::handle`).

use http::Response;
use refbook_core::chat::{BookModel, ListedModel};
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::body::{ok_json, Body};
use crate::ctx::Ctx;
use crate::openai_request::ChatCompletionBody;
use crate::openai_wire::{self, CompletionMeta};
use crate::responses_request::ResponsesBody;
use crate::responses_wire::{self, Finished, ResponseMeta, Standing, StreamParts};

fn model_object(model: &ListedModel) -> Value {
    json!({
        "id": model.id,
        "object": "model",
        "created": model.created.unix_seconds(),
        "owned_by": "refbook",
        "name": model.name,
    })
}

/// `GET /v1/models`: the books the caller has touched (conversations, collection,
/// reading progress, texts they can read), most recently active first, each as itself
/// and once per persona; `name` is what a model picker shows (`三体`, `三体 · 作者`),
/// `created` the latest activity (Unix seconds).
pub async fn models(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let models = ctx.refbook().answering().models(ctx.user()?.id()).await?;
    let data: Vec<Value> = models.iter().map(model_object).collect();
    Ok(ok_json(&json!({"object": "list", "data": data})))
}

/// `GET /v1/models/{model}`: any book the lookup chain finds, with an optional persona
/// (`created`: when Refbook last fetched the book).
pub async fn model(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let model = BookModel::parse(ctx.params.get("model"))?;
    let listed = ctx
        .refbook()
        .answering()
        .book_model(ctx.user()?.id(), &model)
        .await?;
    Ok(ok_json(&model_object(&listed)))
}

/// `POST /v1/chat/completions`: streamed (`stream: true`) or one `chat.completion`.
pub async fn chat_completions(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: ChatCompletionBody = ctx.json().await?;
    let passthrough = ctx.refbook().answering().passes_tools();
    let (request, stream, include_usage) = body.into_request(has_task_header(&ctx), passthrough)?;
    let user = ctx.user()?.id();
    // A client's housekeeping task is not a reader's question: not counted in the
    // per-minute rate (its tokens count a quarter against the quota).
    if !request.task {
        ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    }
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

/// Whether the request carries the operator's task header (`REFBOOK_OPENAI_TASK_HEADER`).
fn has_task_header(ctx: &Ctx) -> bool {
    ctx.app
        .settings()
        .openai_task_header
        .as_deref()
        .is_some_and(|name| ctx.parts.headers.contains_key(name))
}

/// `POST /v1/responses`: OpenAI's Responses API on the same answering step — one
/// `response` object, or with `stream: true` its typed events; kept for follow-ups and
/// `GET` unless `store: false`.
pub async fn create_response(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: ResponsesBody = ctx.json().await?;
    let passthrough = ctx.refbook().answering().passes_tools();
    let (request, stream, echoed) = body.into_request(has_task_header(&ctx), passthrough)?;
    let user = ctx.user()?.id();
    if !request.task {
        ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    }
    let (draft, completion) = ctx.refbook().answering().respond(user, request).await?;
    let meta = ResponseMeta::of_draft(&draft, echoed);
    if stream {
        return Ok(responses_wire::stream_response(StreamParts {
            app: ctx.app.clone(),
            meta,
            draft,
            events: completion.events,
            sources: completion.sources,
            language: ctx.language,
        }));
    }
    let gathered = openai_wire::gather(completion.events).await?;
    let finished = Finished {
        text: gathered.content,
        incomplete: gathered.finish == "length",
        usage: gathered.usage,
    };
    responses_wire::keep(&ctx.app, draft, &finished, &completion.sources).await;
    let status = if finished.incomplete {
        "incomplete"
    } else {
        "completed"
    };
    Ok(ok_json(&responses_wire::response_object(
        &meta,
        &Standing {
            status,
            text: Some(&finished.text),
            usage: Some(&finished.usage),
            sources: &completion.sources,
            error: None,
        },
    )))
}

/// `GET /v1/responses/{id}`: one of the caller's kept responses.
pub async fn get_response(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let kept = ctx
        .refbook()
        .answering()
        .kept_response(ctx.user()?.id(), ctx.params.get("response_id"))
        .await?;
    Ok(ok_json(&responses_wire::kept_object(&kept)))
}

/// `DELETE /v1/responses/{id}`: forgets one of the caller's kept responses.
pub async fn delete_response(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.params.get("response_id");
    ctx.refbook()
        .answering()
        .delete_kept_response(ctx.user()?.id(), id)
        .await?;
    Ok(ok_json(
        &json!({"id": id, "object": "response", "deleted": true}),
    ))
}
