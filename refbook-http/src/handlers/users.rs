//! `/api/user/…` and `/api/users/{username}/`: profile, password, deletion, public profile.

use http::Response;
use refbook_core::accounts::ProfileUpdate;
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;
use crate::request_body::double_option;

/// `GET /api/user/profile/`
pub async fn profile(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let profile = ctx.refbook().accounts().profile(ctx.user()?).await?;
    Ok(ok_json(&profile))
}

#[derive(Deserialize)]
struct ProfileBody {
    nickname: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    email: Option<Option<String>>,
}

/// `PUT`/`PATCH /api/user/profile/`: both update only the fields sent (`null` clears
/// `avatar_url` or `email`).
pub async fn update_profile(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: ProfileBody = ctx.json().await?;
    let user = ctx
        .refbook()
        .accounts()
        .update_profile(
            ctx.user()?,
            ProfileUpdate {
                nickname: body.nickname,
                avatar_url: body.avatar_url,
                email: body.email,
            },
        )
        .await?;
    Ok(ok_json(&user))
}

#[derive(Deserialize)]
struct PasswordBody {
    old_password: String,
    new_password: String,
}

/// `POST /api/user/password/`
pub async fn change_password(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: PasswordBody = ctx.json().await?;
    let payload = ctx
        .refbook()
        .accounts()
        .change_password(ctx.user()?, body.old_password, body.new_password)
        .await?;
    Ok(ok_json(&payload))
}

#[derive(Deserialize)]
struct DeleteBody {
    password: Option<String>,
}

/// `DELETE /api/user/`
pub async fn delete_account(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: DeleteBody = ctx.json().await?;
    let auth = ctx.user()?;
    ctx.refbook()
        .accounts()
        .delete_account(auth, body.password)
        .await?;
    tracing::info!(user_id = %auth.id(), "account deleted");
    Ok(ok_true())
}

/// `GET /api/users/{username}/`
pub async fn public_profile(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let user = ctx
        .refbook()
        .accounts()
        .public_profile(ctx.params.get("username"))
        .await?;
    Ok(ok_json(&user))
}
