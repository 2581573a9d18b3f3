//! The cover proxy: fetches a book's cover image server-side once (with the `Referer`
//! Douban demands), only from allowed hosts, only one accepted image type confirmed by the
//! bytes ([`CoverType`]), size-capped; the image is then kept in the database
//! (`book_covers`).

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::upstream::USER_AGENT;

use super::cover_type::CoverType;
use super::Cover;

/// The default allow-list: the image hosts of the known sources.
pub const DEFAULT_COVER_HOSTS: [&str; 4] = [
    "covers.openlibrary.org",
    "*.doubanio.com",
    "books.google.com",
    "books.googleusercontent.com",
];

/// Douban's image hosts refuse requests without this `Referer`.
const DOUBAN_REFERER: &str = "https://book.douban.com/";

/// Whether `host` is on `allowed` (exact names, or `*.suffix` for any subdomain), on any
/// port an entry allows (see [`url_allowed`] for ports).
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed
        .iter()
        .any(|entry| host_matches(split_port(entry).0, &host))
}

/// An allow-list entry as `(host pattern, port)`: `host:port` names a port.
fn split_port(entry: &str) -> (String, Option<u16>) {
    let entry = entry.trim().to_ascii_lowercase();
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            (host.to_owned(), port.parse().ok())
        }
        _ => (entry, None),
    }
}

fn host_matches(pattern: String, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// Whether `url` may be fetched: `http`/`https`, a host on `allowed`, and a port the entry
/// allows — the one it names (`host:port`), else only the scheme's default port.
pub fn url_allowed(allowed: &[String], url: &reqwest::Url) -> bool {
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let (pattern, port) = split_port(entry);
        host_matches(pattern, &host)
            && match port {
                Some(port) => url.port_or_known_default() == Some(port),
                None => url.port().is_none(),
            }
    })
}

/// Fetches cover images.
#[derive(Debug, Clone)]
pub struct CoverFetcher {
    client: reqwest::Client,
    allowed: Vec<String>,
    max_bytes: usize,
}

fn not_image(en: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        "封面不可用",
        format!("Cover unavailable: {en}"),
    )
}

impl CoverFetcher {
    /// A fetcher for `allowed` hosts (empty: [`DEFAULT_COVER_HOSTS`]) of images up to
    /// `max_bytes`. Redirects are followed only to allowed hosts.
    ///
    /// # Errors
    ///
    /// `Internal` when the HTTP client cannot be built.
    pub fn new(allowed: Vec<String>, max_bytes: usize, timeout: Duration) -> Result<Self, Error> {
        let allowed = if allowed.is_empty() {
            DEFAULT_COVER_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect()
        } else {
            allowed
        };
        let policy_hosts = allowed.clone();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let ok = attempt.previous().len() < 3 && url_allowed(&policy_hosts, attempt.url());
                if ok {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            client,
            allowed,
            max_bytes,
        })
    }

    /// Whether `url` may be fetched at all (scheme, host and port).
    pub fn allows(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| url_allowed(&self.allowed, &u))
    }

    /// Fetches the image at `url`; `douban` adds the `Referer` Douban's hosts require.
    ///
    /// # Errors
    ///
    /// `NotFound` for a host not allowed, a missing image or one too large or not an image;
    /// `UpstreamUnavailable` when the host fails.
    pub async fn fetch(&self, url: &str, douban: bool) -> Result<Cover, Error> {
        if !self.allows(url) {
            tracing::warn!(url, "cover host not on the allow-list");
            return Err(not_image("host not allowed"));
        }
        let mut request = self.client.get(url);
        if douban {
            request = request.header(reqwest::header::REFERER, DOUBAN_REFERER);
        }
        let unavailable = |e: reqwest::Error| {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "封面暂时无法获取",
                "The cover could not be fetched right now",
            )
            .with_source(e.without_url())
        };
        let mut response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Error::new(
                ErrorKind::UpstreamUnavailable,
                "封面暂时无法获取",
                "The cover could not be fetched right now",
            )
            .with_source(format!("cover host answered {status}")));
        }
        if !status.is_success() {
            return Err(not_image(&format!("HTTP {status}")));
        }
        let declared = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if CoverType::declared(&declared).is_none() {
            return Err(not_image("not one accepted image type"));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(not_image("image too large"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(not_image("image too large"));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(not_image("empty image"));
        }
        let Some(kind) = CoverType::checked(&declared, &bytes) else {
            tracing::warn!(url, "cover bytes are not the image type declared");
            return Err(not_image("the bytes are not the declared image type"));
        };
        Ok(Cover {
            source_url: url.to_owned(),
            content_type: kind.as_str().to_owned(),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_exact_hosts_and_subdomains() {
        let allowed: Vec<String> = DEFAULT_COVER_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        assert!(host_allowed(&allowed, "img9.doubanio.com"));
        assert!(host_allowed(&allowed, "covers.openlibrary.org"));
        assert!(!host_allowed(&allowed, "doubanio.com"));
        assert!(!host_allowed(&allowed, "evil-doubanio.com"));
        assert!(!host_allowed(&allowed, "covers.openlibrary.org.evil.net"));
        assert!(!host_allowed(&allowed, "169.254.169.254"));
        let fetcher = CoverFetcher::new(Vec::new(), 1024, Duration::from_secs(1)).unwrap();
        assert!(fetcher.allows("https://img1.doubanio.com/view/subject/l/public/s1.jpg"));
        assert!(!fetcher.allows("file:///etc/passwd"));
        assert!(!fetcher.allows("http://127.0.0.1:8080/admin"));
        assert!(!fetcher.allows("https://covers.openlibrary.org:8443/b/id/1.jpg"));
    }

    #[test]
    fn an_entry_without_a_port_allows_only_the_default_port() {
        let allowed = vec!["localhost".to_owned(), "img.example:9000".to_owned()];
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(url_allowed(&allowed, &url("http://localhost/a.jpg")));
        assert!(url_allowed(&allowed, &url("https://localhost:443/a.jpg")));
        assert!(!url_allowed(&allowed, &url("http://localhost:6379/")));
        assert!(!url_allowed(&allowed, &url("http://localhost:5432/")));
        assert!(url_allowed(&allowed, &url("http://img.example:9000/a.jpg")));
        assert!(!url_allowed(&allowed, &url("http://img.example/a.jpg")));
        assert!(!url_allowed(
            &allowed,
            &url("http://img.example:9001/a.jpg")
        ));
    }
}
