//! `/api/books/{isbn}/progress/`: how far the reader has read the book — the limit on
//! what their questions, searches and the book's guide may draw on.

use http::Response;
use refbook_core::books::{Isbn, Progress};
use refbook_core::domain::ReadingMark;
use refbook_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::body::{ok_json, ok_true, Body};
use crate::ctx::Ctx;

fn isbn(ctx: &Ctx) -> Result<Isbn, ApiError> {
    Isbn::parse(ctx.params.get("isbn")).map_err(|e| ApiError::from(Error::from(e)))
}

fn no_progress() -> ApiError {
    ApiError::from(Error::not_found("阅读进度", "Reading progress"))
}

/// A `PUT` body: exactly one of the two.
#[derive(Deserialize)]
struct Mark {
    section: Option<u32>,
    position: Option<u64>,
}

/// The progress object: where the reader is, as set and as it falls in the text they see.
fn progress_json(progress: &Progress) -> Value {
    let set_by = match progress.mark {
        ReadingMark::Section(_) => "section",
        ReadingMark::Position(_) => "position",
    };
    match &progress.point {
        Some(point) => json!({
            "section": point.section.index,
            "title": point.section.title,
            "position": point.position,
            "chars": point.chars,
            "share": point.share(),
            "set_by": set_by,
            "updated_at": progress.updated_at,
        }),
        // The book's text is gone: the mark as set.
        None => json!({
            "section": match progress.mark { ReadingMark::Section(n) => Some(n), ReadingMark::Position(_) => None },
            "title": null,
            "position": match progress.mark { ReadingMark::Position(n) => Some(n), ReadingMark::Section(_) => None },
            "chars": null,
            "share": null,
            "set_by": set_by,
            "updated_at": progress.updated_at,
        }),
    }
}

/// `PUT /api/books/{isbn}/progress/` with `{"section": N}` (the last section read) or
/// `{"position": CHARS}`: checked against the text the reader sees (`404` with no text,
/// `400` past its end).
pub async fn put(mut ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    let body: Mark = ctx.json().await?;
    let mark = match (body.section, body.position) {
        (Some(section), None) => ReadingMark::Section(section),
        (None, Some(position)) => {
            ReadingMark::Position(usize::try_from(position).unwrap_or(usize::MAX))
        }
        _ => {
            return Err(ApiError::invalid(
                Some("section"),
                "请给出 section（读完的最后一个部分的编号）或 position（字符位置）之一",
                "Give exactly one of section (the index of the last section read) or position (in characters)",
            ))
        }
    };
    let progress = ctx
        .refbook()
        .books()
        .texts()
        .set_progress(&isbn, user, mark)
        .await?;
    Ok(ok_json(&progress_json(&progress)))
}

/// `GET /api/books/{isbn}/progress/` (`404` when none is set).
pub async fn get(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    let progress = ctx
        .refbook()
        .books()
        .texts()
        .progress(&isbn, user)
        .await?
        .ok_or_else(no_progress)?;
    Ok(ok_json(&progress_json(&progress)))
}

/// `DELETE /api/books/{isbn}/progress/`: the whole book again (`200` whether or not one
/// was set: clearing is idempotent).
pub async fn delete(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let isbn = isbn(&ctx)?;
    let user = ctx.user()?.id();
    ctx.refbook()
        .books()
        .texts()
        .clear_progress(&isbn, user)
        .await?;
    Ok(ok_true())
}
