//! The [`BookSource`] seam and what the HTTP sources share.

use async_trait::async_trait;
use bytes_body::fetch;

use super::{Book, Isbn};

/// Why a source could not answer (as opposed to answering "not found").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// No answer within the source's time limit.
    #[error("timed out")]
    Timeout,
    /// 429, or a quota/throttling answer.
    #[error("rate limited (HTTP {0})")]
    RateLimited(u16),
    /// Any other unexpected status (5xx, 403, …).
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// Connection failures.
    #[error("network error: {0}")]
    Network(String),
    /// An answer that could not be understood.
    #[error("unreadable answer: {0}")]
    Decode(String),
}

/// One book catalogue.
#[async_trait]
pub trait BookSource: Send + Sync {
    /// The source's name (`douban`, `openlibrary`, …), recorded on the books it finds.
    fn name(&self) -> &'static str;
    /// Whether this is a local list (the catalogue): its "not found" says nothing about
    /// whether the book exists, so it never turns a remote outage into a 404.
    fn is_local(&self) -> bool {
        false
    }
    /// The book, `None` for a clean "not found", or an error when the source failed.
    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError>;
}

pub(crate) mod bytes_body {
    //! One GET with the source error mapping every HTTP source uses.

    use super::SourceError;

    /// Sends `request`; returns the status and body. Transport failures become
    /// [`SourceError`] without the URL (it may hold an API key).
    ///
    /// # Errors
    ///
    /// [`SourceError`] for a timeout, a refused connection or an unreadable body.
    pub async fn fetch(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), SourceError> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = crate::upstream::read_limited(response, crate::upstream::MAX_SOURCE_BODY)
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    SourceError::Timeout
                } else {
                    SourceError::Network(err.to_string())
                }
            })?;
        Ok((status, body))
    }

    fn transport(err: reqwest::Error) -> SourceError {
        if err.is_timeout() {
            SourceError::Timeout
        } else {
            SourceError::Network(err.without_url().to_string())
        }
    }
}

/// Decodes a JSON answer.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|e| SourceError::Decode(e.to_string()))
}

/// The common status rule: 429 (and 403, which several sources use for throttling) is a
/// rate limit, anything else unexpected is a status error.
pub(crate) fn status_error(status: u16) -> SourceError {
    match status {
        429 | 403 => SourceError::RateLimited(status),
        other => SourceError::Status(other),
    }
}

/// GETs `request` and returns the body of a 200, `None` for a 404, an error otherwise.
pub(crate) async fn get_ok_or_404(
    request: reqwest::RequestBuilder,
) -> Result<Option<Vec<u8>>, SourceError> {
    match fetch(request).await? {
        (200, body) => Ok(Some(body)),
        (404, _) => Ok(None),
        (status, _) => Err(status_error(status)),
    }
}

/// Trims a text field; `None` when empty.
pub(crate) fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Trims every entry of a list and drops empty ones.
pub(crate) fn clean_list(items: impl IntoIterator<Item = String>) -> Vec<String> {
    items.into_iter().filter_map(|s| clean(Some(s))).collect()
}
