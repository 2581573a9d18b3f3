//! `/api/books/…`: one book, its cover, search.

use http::{header, HeaderValue, Response};
use refbook_core::books::Isbn;
use refbook_core::Error;

use crate::api_error::ApiError;
use crate::body::{full, ok_json, Body};
use crate::ctx::Ctx;
use crate::pagination::PageRequest;

/// How long clients and caches may keep a cover image.
const COVER_CACHE_CONTROL: &str = "public, max-age=604800";

/// The policy on every cover: no script, no subresource, a sandboxed origin.
pub const COVER_POLICY: &str = "default-src 'none'; sandbox";

fn isbn(ctx: &Ctx) -> Result<Isbn, ApiError> {
    Isbn::parse(ctx.params.get("isbn")).map_err(|e| ApiError::from(Error::from(e)))
}

/// `GET /api/books/{isbn}/`
pub async fn book(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let book = ctx.refbook().books().get(&isbn).await?;
    Ok(ok_json(&book))
}

/// `GET /api/books/{isbn}/cover/`: the image bytes, cacheable for a week.
pub async fn cover(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let cover = ctx.refbook().books().cover(&isbn).await?;
    // The core serves only a checked type (`CoverType`); its static name is what goes out.
    let content_type = refbook_core::books::CoverType::declared(&cover.content_type)
        .map_or(HeaderValue::from_static("application/octet-stream"), |t| {
            HeaderValue::from_static(t.as_str())
        });
    let mut response = Response::new(full(cover.bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(COVER_CACHE_CONTROL),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Relayed bytes from elsewhere: even opened as a page, nothing in them may run.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(COVER_POLICY),
    );
    Ok(response)
}

/// `GET /api/books/?q=keyword`: stored books whose title or author matches (all stored
/// books when `q` is empty).
pub async fn search(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let query = ctx.query_param("q").unwrap_or_default();
    if query.chars().count() > 200 {
        return Err(ApiError::invalid(
            Some("q"),
            "搜索词过长",
            "The search text is too long",
        ));
    }
    let (count, books) = ctx
        .refbook()
        .books()
        .search(&query, page.limit, page.offset)
        .await?;
    Ok(ok_json(&page.page(&ctx, count, books)))
}
