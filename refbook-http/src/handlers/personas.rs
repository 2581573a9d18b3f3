//! `/api/personas/…`.

use http::Response;
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;

/// `GET /api/personas/`: built-ins and the caller's own (a plain list).
pub async fn list(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let personas = ctx
        .refbook()
        .conversations()
        .personas(ctx.user()?.id())
        .await?;
    Ok(ok_json(&personas))
}

#[derive(Deserialize)]
struct NewPersona {
    name: String,
    description: String,
}

/// `POST /api/personas/`
pub async fn create(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: NewPersona = ctx.json().await?;
    let persona = ctx
        .refbook()
        .conversations()
        .create_persona(ctx.user()?.id(), &body.name, &body.description)
        .await?;
    Ok(ok_json(&persona))
}

/// `GET /api/personas/{id}/`
pub async fn get(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    let persona = ctx
        .refbook()
        .conversations()
        .persona(ctx.user()?.id(), id)
        .await?;
    Ok(ok_json(&persona))
}

/// `DELETE /api/personas/{id}/` (built-ins: `400`)
pub async fn delete(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    ctx.refbook()
        .conversations()
        .delete_persona(ctx.user()?.id(), id)
        .await?;
    Ok(ok_true())
}
