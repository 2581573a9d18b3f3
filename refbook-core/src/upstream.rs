//! Talking to upstreams (book sources, WeChat, models): how Refbook introduces itself, and
//! reading their answers with a size limit, so a hostile or broken upstream cannot make
//! the server hold an unbounded body.

/// The `User-Agent` of every upstream request (Open Library refuses bare agents).
pub const USER_AGENT: &str = concat!(
    "Refbook/",
    env!("CARGO_PKG_VERSION"),
    " (+https://example.invalid/refbook; ops@example.invalid)"
);

/// The most of a book source's answer read.
pub const MAX_SOURCE_BODY: usize = 2 * 1024 * 1024;
/// The most of a small JSON answer (WeChat) or an error body read.
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit arrived.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The transfer failed (the URL is left out: it may hold a key).
    #[error("{0}")]
    Transport(#[source] reqwest::Error),
}

impl BodyError {
    /// Whether the transfer timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(err) if err.is_timeout())
    }
}

/// The whole body of `response`, refusing more than `max` bytes (by the declared length
/// or as it arrives).
///
/// # Errors
///
/// [`BodyError::TooLarge`] over `max`; [`BodyError::Transport`] when reading fails.
pub async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(e.without_url()))?
    {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
