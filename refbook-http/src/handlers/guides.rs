//! `/api/books/{isbn}/guide/`: the book's guide (深度解析), cut at the reader's progress.

use http::Response;
use refbook_core::books::Isbn;
use refbook_core::Error;

use crate::api_error::ApiError;
use crate::body::{ok_json, Body};
use crate::ctx::Ctx;

/// `GET /api/books/{isbn}/guide/`: `{"status", "book": {"summary"}|null, "sections":
/// [{"index", "title", "summary"}], "done", "total", "error"}`; `404` when the book has
/// no text (a book with no text has no guide, never an invented one).
pub async fn get(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = Isbn::parse(ctx.params.get("isbn")).map_err(|e| ApiError::from(Error::from(e)))?;
    let user = ctx.user()?.id();
    let guide = ctx
        .refbook()
        .guides()
        .for_reader(&isbn, Some(user))
        .await?
        .ok_or_else(|| ApiError::from(Error::not_found("这本书的文本", "Text of this book")))?;
    Ok(ok_json(&guide))
}
