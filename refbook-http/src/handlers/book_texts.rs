//! `/api/books/{isbn}/text/` (a reader's own copy of a book's text, and what text the
//! reader's questions use) and `/api/books/{isbn}/passages/` (search inside it).

use http::{Response, StatusCode};
use refbook_core::books::{Isbn, PassageQuery};
use refbook_core::domain::{BookTextInfo, TextFormat, TextScope, TextState, UserId};
use refbook_core::guide::GuideStatus;
use refbook_core::Error;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::body::{json_response, ok_json, ok_true, Body};
use crate::ctx::Ctx;

/// The media types a reader's copy may be sent as.
pub const TEXT_MEDIA_TYPES: &[&str] = &["text/plain", "text/markdown", "application/epub+zip"];

/// Passages a search returns unless `limit` says otherwise.
const DEFAULT_PASSAGES: usize = 5;

fn isbn(ctx: &Ctx) -> Result<Isbn, ApiError> {
    Isbn::parse(ctx.params.get("isbn")).map_err(|e| ApiError::from(Error::from(e)))
}

fn no_text() -> ApiError {
    ApiError::from(Error::not_found("这本书的文本", "Text of this book"))
}

/// The status object of a stored text, as `reader` sees it (with its guide's progress).
async fn status(ctx: &Ctx, text: &BookTextInfo, reader: UserId) -> Result<Value, ApiError> {
    let texts = ctx.refbook().books().texts();
    let sections = texts.sections(text).await?;
    let (guide, done, total) = match text.state {
        TextState::Ready => ctx.refbook().guides().progress_of(text).await?,
        // A text on its way gets its guide once it serves.
        _ => (GuideStatus::Building, 0, 0),
    };
    let scope = match text.scope {
        TextScope::Reader(owner) if owner == reader => "mine",
        _ => "library",
    };
    #[allow(clippy::cast_precision_loss)]
    let progress = match text.state {
        TextState::Ready => 1.0,
        _ if text.chunks == 0 => 0.0,
        _ => (text.vectors.min(text.chunks) as f64 / text.chunks as f64 * 1000.0).floor() / 1000.0,
    };
    Ok(json!({
        "status": text.state.as_str(),
        "scope": scope,
        "format": text.format.as_str(),
        "chars": text.chars,
        "sections": sections,
        "chunks": text.chunks,
        "progress": progress,
        "error": text.error,
        "guide": {"status": guide, "done": done, "total": total},
    }))
}

/// `PUT /api/books/{isbn}/text/`: the reader's own copy (the raw file as the body),
/// checked and stored before the answer, indexed in the background (`202` with its
/// status: `indexing`, or `ready` when there is no embedder).
pub async fn put(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    ctx.app.check_chat_rate(ctx.client_ip, user).await?;
    let limit = ctx.refbook().books().texts().max_bytes();
    let (media_type, bytes) = ctx.file(TEXT_MEDIA_TYPES, limit).await?;
    // The book must be one the lookup chain knows (404 otherwise).
    ctx.refbook().books().get(&isbn).await?;
    let format = match media_type {
        "text/markdown" => TextFormat::Markdown,
        "application/epub+zip" => TextFormat::Epub,
        _ => TextFormat::Plain,
    };
    let texts = ctx.refbook().books().texts();
    let added = texts
        .add(&isbn, TextScope::Reader(user), format, bytes.to_vec())
        .await?;
    let body = status(&ctx, &added.info, user).await?;
    Ok(json_response(StatusCode::ACCEPTED, &body))
}

/// `GET /api/books/{isbn}/text/`: the reader's newest copy in whatever state (indexing,
/// ready, failed), else the library's newest text; `404` when there is none.
pub async fn get(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    let text = ctx
        .refbook()
        .books()
        .texts()
        .status_for(&isbn, user)
        .await?
        .ok_or_else(no_text)?;
    Ok(ok_json(&status(&ctx, &text, user).await?))
}

/// `DELETE /api/books/{isbn}/text/`: removes the reader's own copy (`404` when they have
/// none; the library's text is the operator's).
pub async fn delete(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    let removed = ctx
        .refbook()
        .books()
        .texts()
        .remove(&isbn, TextScope::Reader(user))
        .await?;
    if !removed {
        return Err(no_text());
    }
    Ok(ok_true())
}

/// `GET /api/books/{isbn}/passages/?q=…&limit=N&all=false`: the passages of the text the
/// reader sees that best match `q`, best first (`limit` 1–20, default 5; more is served as
/// 20), none past the reader's progress unless `all=true`; a `q` naming sections
/// ("第三回") searches those.
pub async fn passages(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    let query = ctx.query_param("q").unwrap_or_default();
    refbook_core::text::refuse_controls("q", &query)?;
    if query.trim().is_empty() || query.chars().count() > 1000 {
        return Err(ApiError::invalid(
            Some("q"),
            "q 须为 1–1000 个字符",
            "q must be 1–1000 characters",
        ));
    }
    let limit = match ctx.query_param("limit") {
        None => DEFAULT_PASSAGES,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ApiError::invalid(
                    Some("limit"),
                    "limit 须为正整数",
                    "limit must be a positive integer",
                ))
            }
        },
    };
    let whole_book = match ctx.query_param("all").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                Some("all"),
                "all 须为 true 或 false",
                "all must be true or false",
            ))
        }
    };
    let found = ctx
        .refbook()
        .books()
        .texts()
        .find(PassageQuery {
            isbn: &isbn,
            reader: Some(user),
            query: &query,
            question: &query,
            limit,
            whole_book,
        })
        .await?
        .ok_or_else(no_text)?;
    Ok(ok_json(&json!({ "results": found.passages })))
}
