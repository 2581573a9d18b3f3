//! `/api/user/api-keys/…`: personal API keys.

use http::{Response, StatusCode};
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::body::{json_response, ok_json, ok_true, Body};
use crate::ctx::Ctx;

#[derive(Deserialize)]
struct NewKey {
    name: String,
}

/// `POST /api/user/api-keys/` `{name}`: `201` with the key, shown this once.
pub async fn create(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: NewKey = ctx.json().await?;
    let key = ctx
        .refbook()
        .accounts()
        .create_api_key(ctx.user()?, &body.name)
        .await?;
    Ok(json_response(StatusCode::CREATED, &key))
}

/// `GET /api/user/api-keys/`: the caller's keys, newest first, without the keys.
pub async fn list(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let keys = ctx.refbook().accounts().api_keys(ctx.user()?).await?;
    Ok(ok_json(&keys))
}

/// `DELETE /api/user/api-keys/{id}/`: revokes at once (another user's key: `404`).
pub async fn revoke(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let id = ctx.id_param("id")?;
    ctx.refbook()
        .accounts()
        .revoke_api_key(ctx.user()?, id)
        .await?;
    Ok(ok_true())
}
