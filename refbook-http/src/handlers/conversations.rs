//! `/api/conversations/…` (and `/api/user/history/…`, the same list).

use http::Response;
use refbook_core::books::Isbn;
use refbook_core::chat::{Conversation, Message};
use refbook_core::Error;
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;
use crate::pagination::PageRequest;
use crate::request_body::double_option;
use refbook_core::domain::PersonaId;

/// `GET /api/conversations/?isbn=` and `GET /api/user/history/`: most recently active first.
pub async fn list(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let isbn = match ctx.query_param("isbn").filter(|i| !i.trim().is_empty()) {
        Some(text) => Some(Isbn::parse(&text).map_err(Error::from)?),
        None => None,
    };
    let (count, list) = ctx
        .refbook()
        .conversations()
        .conversations(ctx.user()?.id(), isbn.as_ref(), page.limit, page.offset)
        .await?;
    Ok(ok_json(&page.page(&ctx, count, list)))
}

#[derive(Deserialize)]
struct NewConversation {
    isbn: String,
    title: Option<String>,
    persona_id: Option<PersonaId>,
}

/// `POST /api/conversations/`
pub async fn create(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: NewConversation = ctx.json().await?;
    let isbn = Isbn::parse(&body.isbn).map_err(Error::from)?;
    let conversation = ctx
        .refbook()
        .conversations()
        .create_conversation(
            ctx.user()?.id(),
            &isbn,
            body.title.as_deref(),
            body.persona_id,
        )
        .await?;
    Ok(ok_json(&conversation))
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    conversation: Conversation,
    messages: Vec<Message>,
}

/// `GET /api/conversations/{id}/`: with its messages, oldest first.
pub async fn get(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let (conversation, messages) = ctx
        .refbook()
        .conversations()
        .conversation_with_messages(ctx.user()?.id(), id)
        .await?;
    Ok(ok_json(&Detail {
        conversation,
        messages,
    }))
}

#[derive(Deserialize)]
struct Change {
    title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    persona_id: Option<Option<PersonaId>>,
}

/// `PATCH /api/conversations/{id}/`
pub async fn update(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let body: Change = ctx.json().await?;
    let conversation = ctx
        .refbook()
        .conversations()
        .update_conversation(ctx.user()?.id(), id, body.title.as_deref(), body.persona_id)
        .await?;
    Ok(ok_json(&conversation))
}

/// `DELETE /api/conversations/{id}/` and `DELETE /api/user/history/{id}/`
pub async fn delete(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    ctx.refbook()
        .conversations()
        .delete_conversation(ctx.user()?.id(), id)
        .await?;
    Ok(ok_true())
}

/// `DELETE /api/conversations/{id}/messages/{mid}/`
pub async fn delete_message(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let message_id = ctx.id_param("mid")?;
    ctx.refbook()
        .conversations()
        .delete_message(ctx.user()?.id(), id, message_id)
        .await?;
    Ok(ok_true())
}
