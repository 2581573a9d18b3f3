//! [`Downloader`]: fetches a model file once into the cache — resumed after a cut from
//! where it broke off (HTTP `Range`), checked against the size and SHA-256 the hub names
//! (or the reference pins), and moved into place only when whole and verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::model_ref::Remote;
use crate::llm::DownloadProgress;

/// Attempts in a row that may bring no new bytes before the download gives up.
const ATTEMPTS_WITHOUT_PROGRESS: u32 = 3;
/// Silence on the connection after which an attempt counts as cut.
const STALL: Duration = Duration::from_secs(60);

/// Why a model could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No connection to the server (offline, wrong host, blocked).
    #[error("cannot reach {url}: {cause}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// The network's answer.
        cause: String,
    },
    /// The server refused (404: no such file; 401/403: a gated or private repository).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// What was asked.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The connection broke off again and again without bringing more of the file.
    #[error("the download of {url} keeps breaking off")]
    Cut {
        /// What was asked.
        url: String,
    },
    /// The whole file is not the one expected (the partial file was removed).
    #[error("the downloaded file is damaged: SHA-256 {actual}, expected {expected}")]
    Checksum {
        /// The hash it should have.
        expected: String,
        /// The hash it has.
        actual: String,
    },
    /// More bytes than the file has (the partial file was removed).
    #[error("the download is larger than the file ({actual} bytes, expected {expected})")]
    Size {
        /// The size the server named.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// The cache folder could not be written.
    #[error("cannot write {path}: {cause}")]
    Disk {
        /// The file.
        path: String,
        /// What went wrong.
        cause: String,
    },
}

/// What the server says about the file before its bytes.
#[derive(Debug, Default)]
struct Expected {
    size: Option<u64>,
    sha256: Option<String>,
}

/// Downloads model files.
#[derive(Debug, Clone)]
pub struct Downloader {
    /// Follows redirects (the hub sends the bytes from a CDN).
    client: reqwest::Client,
    /// Does not: the hub's redirect itself carries the size and hash.
    no_redirects: reqwest::Client,
}

impl Downloader {
    /// A downloader that introduces itself as `user_agent`.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(user_agent: &str) -> Result<Self, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .connect_timeout(Duration::from_secs(15))
        };
        Ok(Self {
            client: builder()
                .redirect(crate::upstream::no_downgrade_redirects())
                .build()?,
            no_redirects: builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// Makes `dest` hold `remote`'s file: at once when it already does (never fetched
    /// twice), else downloaded beside it (`dest.part`, resumed if a previous try left
    /// one), verified, then moved into place.
    ///
    /// # Errors
    ///
    /// [`DownloadError`]: unreachable, refused, cut for good, damaged, or a disk failure.
    pub async fn fetch(
        &self,
        remote: &Remote,
        dest: &Path,
        progress: &dyn DownloadProgress,
    ) -> Result<(), DownloadError> {
        if dest.is_file() {
            return Ok(());
        }
        let part = part_path(dest);
        if let Some(folder) = dest.parent() {
            tokio::fs::create_dir_all(folder)
                .await
                .map_err(|e| disk(folder, &e))?;
        }
        let mut expected = if remote.hub {
            self.hub_metadata(&remote.url).await?
        } else {
            Expected::default()
        };
        if remote.sha256.is_some() {
            expected.sha256.clone_from(&remote.sha256);
        }
        let name = remote.file_name();
        let result = self
            .download(remote, &part, &mut expected, &name, progress)
            .await;
        let result = match result {
            Ok(()) => verify(&part, &expected).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => {
                tokio::fs::rename(&part, dest)
                    .await
                    .map_err(|e| disk(dest, &e))?;
                progress.finished(&name, true);
                Ok(())
            }
            Err(err) => {
                if matches!(
                    err,
                    DownloadError::Checksum { .. } | DownloadError::Size { .. }
                ) {
                    let _ = tokio::fs::remove_file(&part).await;
                }
                progress.finished(&name, false);
                Err(err)
            }
        }
    }

    /// The size and SHA-256 the hub names on its redirect to the bytes (LFS files).
    async fn hub_metadata(&self, url: &str) -> Result<Expected, DownloadError> {
        let response = self
            .no_redirects
            .head(url)
            .send()
            .await
            .map_err(|e| cannot_reach(url, &e))?;
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim_matches('"').to_owned())
        };
        let sha256 = header("x-linked-etag")
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let size = header("x-linked-size")
            .or_else(|| {
                (status.is_success() && response.headers().get(LOCATION).is_none())
                    .then(|| header(CONTENT_LENGTH.as_str()))
                    .flatten()
            })
            .and_then(|v| v.parse().ok());
        Ok(Expected {
            size,
            sha256: sha256.map(|s| s.to_ascii_lowercase()),
        })
    }

    /// Brings the whole file into `part`, resuming after each cut while cuts bring bytes.
    async fn download(
        &self,
        remote: &Remote,
        part: &Path,
        expected: &mut Expected,
        name: &str,
        progress: &dyn DownloadProgress,
    ) -> Result<(), DownloadError> {
        let url = remote.url.as_str();
        let mut fruitless = 0;
        let mut announced = false;
        loop {
            let have = tokio::fs::metadata(part).await.map_or(0, |m| m.len());
            if expected.size.is_some_and(|size| have >= size) {
                return Ok(()); // Whole (or too long: `verify` says which).
            }
            let mut request = self.client.get(url);
            if have > 0 {
                request = request.header(RANGE, format!("bytes={have}-"));
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) if announced && fruitless < ATTEMPTS_WITHOUT_PROGRESS => {
                    fruitless += 1;
                    tokio::time::sleep(backoff(fruitless)).await;
                    tracing::debug!(error = %err, "model download: reconnecting");
                    continue;
                }
                Err(err) => return Err(cannot_reach(url, &err)),
            };
            let start = match response.status() {
                StatusCode::PARTIAL_CONTENT => {
                    let (start, total) = content_range(&response).unwrap_or((0, None));
                    if expected.size.is_none() {
                        expected.size = total;
                    }
                    start
                }
                StatusCode::OK => {
                    if expected.size.is_none() {
                        expected.size = response.content_length();
                    }
                    0 // A server that ignores `Range` sends it all again.
                }
                StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => return Ok(()),
                status => {
                    return Err(DownloadError::Status {
                        url: url.to_owned(),
                        status: status.as_u16(),
                    })
                }
            };
            if start != 0 && start != have {
                // An answer for other bytes than asked: start over, a few times at most.
                fruitless += 1;
                if fruitless >= ATTEMPTS_WITHOUT_PROGRESS {
                    return Err(DownloadError::Cut {
                        url: url.to_owned(),
                    });
                }
                tokio::fs::remove_file(part)
                    .await
                    .map_err(|e| disk(part, &e))?;
                continue;
            }
            if !announced || start == 0 {
                progress.started(name, expected.size, start);
                announced = true;
            }
            let done = append(response, part, start, progress).await?;
            if done > have {
                fruitless = 0;
            } else {
                fruitless += 1;
            }
            match expected.size {
                Some(size) if done < size => {
                    if fruitless >= ATTEMPTS_WITHOUT_PROGRESS {
                        return Err(DownloadError::Cut {
                            url: url.to_owned(),
                        });
                    }
                    tokio::time::sleep(backoff(fruitless)).await;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Writes the body after `start` bytes of `part`; returns how many bytes `part` holds
/// when the body ended or broke off.
async fn append(
    response: reqwest::Response,
    part: &Path,
    start: u64,
    progress: &dyn DownloadProgress,
) -> Result<u64, DownloadError> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(part)
        .await
        .map_err(|e| disk(part, &e))?;
    let mut done = start;
    let mut body = response.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(STALL, body.next()).await {
        file.write_all(&chunk).await.map_err(|e| disk(part, &e))?;
        done += chunk.len() as u64;
        progress.advanced(done);
    }
    file.flush().await.map_err(|e| disk(part, &e))?;
    file.sync_all().await.map_err(|e| disk(part, &e))?;
    Ok(done)
}

/// Checks the whole file against the size and hash expected.
async fn verify(part: &Path, expected: &Expected) -> Result<(), DownloadError> {
    let path = part.to_path_buf();
    let (size, actual) = tokio::task::spawn_blocking(move || sha256_of(&path))
        .await
        .map_err(|e| disk(part, &e))?
        .map_err(|e| disk(part, &e))?;
    if let Some(expected_size) = expected.size.filter(|&s| s != size) {
        return Err(DownloadError::Size {
            expected: expected_size,
            actual: size,
        });
    }
    match &expected.sha256 {
        Some(hash) if *hash != actual => Err(DownloadError::Checksum {
            expected: hash.clone(),
            actual,
        }),
        _ => Ok(()),
    }
}

/// The size and SHA-256 (lowercase hex) of a file.
fn sha256_of(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    let digest = hasher.finalize();
    Ok((size, digest.iter().map(|b| format!("{b:02x}")).collect()))
}

/// `bytes START-END/TOTAL` of a 206 answer.
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.parse().ok()?;
    Some((start, total.parse().ok()))
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * u64::from(attempt))
}

/// The network's failure in its own words: the innermost cause (`dns error: …`,
/// `Connection refused`), not reqwest's wrappers around it.
fn cannot_reach(url: &str, err: &reqwest::Error) -> DownloadError {
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    DownloadError::Unreachable {
        url: url.to_owned(),
        cause: cause.to_string(),
    }
}

fn disk(path: &Path, err: &dyn std::fmt::Display) -> DownloadError {
    DownloadError::Disk {
        path: path.display().to_string(),
        cause: err.to_string(),
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
