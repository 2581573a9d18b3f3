//! The contract's list pages: `limit` (default 20, max 100), `offset` (alias `skip`), and
//! `{"count", "next", "previous", "results"}` with absolute links.

use serde::Serialize;

use crate::api_error::ApiError;
use crate::ctx::Ctx;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest page size; larger requests are clamped (as DRF does).
pub const MAX_LIMIT: i64 = 100;
/// The largest offset taken (larger ones are clamped): no arithmetic on it overflows.
pub const MAX_OFFSET: i64 = 1 << 40;

/// A requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

/// A page of results as the contract shows it.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// All matching items.
    pub count: i64,
    /// The next page's URL, or null.
    pub next: Option<String>,
    /// The previous page's URL, or null.
    pub previous: Option<String>,
    /// This page.
    pub results: Vec<T>,
}

fn number(ctx: &Ctx, name: &str) -> Result<Option<i64>, ApiError> {
    match ctx.query_param(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            ApiError::invalid(
                Some(name),
                format!("`{name}` 须为整数"),
                format!("`{name}` must be a whole number"),
            )
        }),
    }
}

impl PageRequest {
    /// Reads `limit` and `offset`/`skip` from the query string.
    pub fn from_ctx(ctx: &Ctx) -> Result<Self, ApiError> {
        let limit = number(ctx, "limit")?.unwrap_or(DEFAULT_LIMIT);
        let offset = match number(ctx, "offset")? {
            Some(offset) => offset,
            None => number(ctx, "skip")?.unwrap_or(0),
        };
        Ok(Self {
            limit: if limit <= 0 {
                DEFAULT_LIMIT
            } else {
                limit.min(MAX_LIMIT)
            },
            offset: offset.clamp(0, MAX_OFFSET),
        })
    }

    /// The page of `results` out of `count`, with links built from the request.
    pub fn page<T>(&self, ctx: &Ctx, count: i64, results: Vec<T>) -> Page<T> {
        let after = self.offset.saturating_add(self.limit);
        let next = (after < count).then(|| self.link(ctx, after));
        let previous = (self.offset > 0).then(|| self.link(ctx, (self.offset - self.limit).max(0)));
        Page {
            count,
            next,
            previous,
            results,
        }
    }

    fn link(&self, ctx: &Ctx, offset: i64) -> String {
        let mut pairs: Vec<(String, String)> = ctx
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "limit" | "offset" | "skip"))
            .collect();
        pairs.push(("limit".to_owned(), self.limit.to_string()));
        pairs.push(("offset".to_owned(), offset.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}{}?{query}", base_url(ctx), ctx.parts.uri.path())
    }
}

/// `REFBOOK_PUBLIC_URL` without its trailing slash, else empty: links are then paths
/// (`/api/…`), never built from the request's `Host` header, which the client controls.
pub fn base_url(ctx: &Ctx) -> String {
    ctx.refbook()
        .config()
        .general
        .public_url
        .as_deref()
        .map(|public| public.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}
