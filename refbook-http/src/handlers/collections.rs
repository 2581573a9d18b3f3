//! `/api/user/collections/…`.

use http::Response;
use refbook_core::books::Isbn;
use refbook_core::Error;
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;
use crate::pagination::PageRequest;

/// `GET /api/user/collections/`, newest first.
pub async fn list(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let (count, items) = ctx
        .refbook()
        .books()
        .collection(ctx.user()?.id(), page.limit, page.offset)
        .await?;
    Ok(ok_json(&page.page(&ctx, count, items)))
}

#[derive(Deserialize)]
struct Add {
    isbn: String,
}

/// `POST /api/user/collections/` (idempotent; unknown book `404`)
pub async fn add(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body: Add = ctx.json().await?;
    let isbn = Isbn::parse(&body.isbn).map_err(Error::from)?;
    let item = ctx
        .refbook()
        .books()
        .collect(ctx.user()?.id(), &isbn)
        .await?;
    Ok(ok_json(&item))
}

/// `DELETE /api/user/collections/{isbn}/` (`404` if not collected)
pub async fn remove(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = Isbn::parse(ctx.params.get("isbn")).map_err(Error::from)?;
    ctx.refbook()
        .books()
        .uncollect(ctx.user()?.id(), &isbn)
        .await?;
    Ok(ok_true())
}
