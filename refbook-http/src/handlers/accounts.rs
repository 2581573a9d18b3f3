//! `/api/auth/…`: registration, the three logins, refresh, logout, me.

use http::Response;
use refbook_core::accounts::{Registration, User};
use serde::Deserialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    email: Option<String>,
    nickname: Option<String>,
}

/// `POST /api/auth/register/`
pub async fn register(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: RegisterBody = ctx.json().await?;
    ctx.app
        .check_login_rate(ctx.client_ip, Some(&body.username))
        .await?;
    let payload = ctx
        .refbook()
        .accounts()
        .register(Registration {
            username: body.username,
            password: body.password,
            email: body.email,
            nickname: body.nickname,
        })
        .await?;
    tracing::info!(user_id = %payload.user.id, "user registered");
    Ok(ok_json(&payload))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/auth/login/` (`username` may be the email)
pub async fn login(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: LoginBody = ctx.credentials_json().await?;
    ctx.app
        .check_login_rate(ctx.client_ip, Some(&body.username))
        .await?;
    let payload = ctx
        .refbook()
        .accounts()
        .login(&body.username, body.password)
        .await?;
    Ok(ok_json(&payload))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    username: String,
    password: String,
}

/// `POST /api/auth/token/`: the OAuth2 password grant (form body; JSON also accepted).
pub async fn token(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let form: TokenForm = ctx.credentials_form().await?;
    if form.grant_type.as_deref().is_some_and(|g| g != "password") {
        return Err(ApiError::invalid(
            Some("grant_type"),
            "grant_type 只支持 password",
            "Only grant_type=password is supported",
        ));
    }
    ctx.app
        .check_login_rate(ctx.client_ip, Some(&form.username))
        .await?;
    let payload = ctx
        .refbook()
        .accounts()
        .login(&form.username, form.password)
        .await?;
    Ok(ok_json(&json!({
        "access_token": payload.token,
        "token_type": "bearer",
        "expires_in": payload.expires_in,
        "refresh_token": payload.refresh_token,
    })))
}

#[derive(Deserialize)]
struct WeChatBody {
    code: String,
}

/// `POST /api/auth/login/wechat/`
pub async fn login_wechat(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: WeChatBody = ctx.json().await?;
    ctx.app.check_login_rate(ctx.client_ip, None).await?;
    let payload = ctx.refbook().accounts().login_wechat(&body.code).await?;
    Ok(ok_json(&payload))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/auth/refresh/`
pub async fn refresh(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: RefreshBody = ctx.json().await?;
    let payload = ctx
        .refbook()
        .accounts()
        .refresh(&body.refresh_token)
        .await?;
    Ok(ok_json(&payload))
}

#[derive(Deserialize)]
struct LogoutBody {
    refresh_token: Option<String>,
    /// `null` or absent: this session only.
    all: Option<bool>,
}

/// `POST /api/auth/logout/`
pub async fn logout(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: LogoutBody = ctx.json().await?;
    let auth = ctx.user()?;
    ctx.refbook()
        .accounts()
        .logout(
            auth,
            body.refresh_token.as_deref(),
            body.all.unwrap_or(false),
        )
        .await?;
    Ok(ok_true())
}

/// `GET /api/auth/me/`
pub async fn me(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    Ok(ok_json(&User::from(&ctx.user()?.user)))
}
