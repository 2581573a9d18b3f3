//! Talking to upstreams (book sources, WeChat, models): how Refbook introduces itself, and
//! reading their answers with a size limit, so a hostile or broken upstream cannot make
//! the server hold an unbounded body.

/// The `User-Agent` of every upstream request (Open Library refuses bare agents).
pub const USER_AGENT: &str = concat!(
    "Refbook/",
    env!("CARGO_PKG_VERSION"),
    " (+https://example.invalid/refbook; ops@example.invalid)"
);

/// The most redirects an upstream request follows.
const MAX_REDIRECTS: usize = 5;

/// The redirect rule of the book sources' and WeChat's client: a redirect is followed only
/// to the origin that was asked (same scheme, host and port; Open Library's `/isbn/…` →
/// `/books/…` stays there), so an upstream's answer can never point the server at another
/// host, an internal address, or plain HTTP.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The redirect rule of the model downloader: the hub sends the bytes from a CDN on
/// another host, so any host is followed, but never from `https` down to `http`.
pub fn no_downgrade_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade || attempt.previous().len() > MAX_REDIRECTS * 2 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

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
