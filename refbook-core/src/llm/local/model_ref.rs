//! [`ModelRef`]: what `REFBOOK_LOCAL_MODEL` names — a file on this machine, a file on the
//! Hugging Face hub (`hf:OWNER/REPO/FILE.gguf`) or at a URL — and where a downloaded
//! one is kept.

use std::path::{Path, PathBuf};

/// The model used when none is named: Qwen2.5-0.5B-Instruct, quantized to Q4_K_M
/// (398 MB), from the Qwen team's own repository. Small enough for a laptop's CPU, and
/// it answers Chinese and English (see docs/LOCAL_MODEL.md for why this one).
pub const DEFAULT_LOCAL_MODEL: &str =
    "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf";

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A file on this machine.
    File(PathBuf),
    /// A file to download once.
    Remote(Remote),
}

/// A model file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Where its bytes come from.
    pub url: String,
    /// Whether `url` is a Hugging Face `resolve` address, which names the file's size and
    /// SHA-256 in `X-Linked-Size`/`X-Linked-Etag` before redirecting to the bytes.
    pub hub: bool,
    /// The SHA-256 it must have, when the reference pins one (`…#sha256=HEX`).
    pub sha256: Option<String>,
    /// Its place under the model cache folder.
    pub cache_path: PathBuf,
}

impl Remote {
    /// The file's name, for messages.
    pub fn file_name(&self) -> String {
        self.cache_path
            .file_name()
            .map_or_else(|| self.url.clone(), |n| n.to_string_lossy().into_owned())
    }
}

impl ModelRef {
    /// Reads a reference; `hf:` ones are fetched from `hf_endpoint`.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with the reference.
    pub fn parse(text: &str, hf_endpoint: &str) -> Result<Self, String> {
        let text = text.trim();
        let (text, sha256) = match text.split_once("#sha256=") {
            Some((text, hex)) if is_sha256(hex) => (text, Some(hex.to_ascii_lowercase())),
            Some(_) => return Err("`#sha256=` must be followed by 64 hex digits".into()),
            None => (text, None),
        };
        if let Some(hub_path) = text.strip_prefix("hf:") {
            let mut parts = hub_path.splitn(3, '/');
            let (Some(owner), Some(repo), Some(file)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err("a hub model is `hf:OWNER/REPO/FILE.gguf`".into());
            };
            let (repo, revision) = repo.split_once('@').unwrap_or((repo, "main"));
            let cache_path = safe_path(&["huggingface", owner, repo, revision, file])?;
            let url = format!(
                "{}/{owner}/{repo}/resolve/{revision}/{file}",
                hf_endpoint.trim_end_matches('/')
            );
            return Ok(Self::Remote(Remote {
                url,
                hub: true,
                sha256,
                cache_path,
            }));
        }
        if let Some(rest) = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
        {
            let path = rest.split(['?', '#']).next().unwrap_or(rest);
            let segments: Vec<&str> = std::iter::once("url").chain(path.split('/')).collect();
            return Ok(Self::Remote(Remote {
                url: text.to_owned(),
                hub: false,
                sha256,
                cache_path: safe_path(&segments)?,
            }));
        }
        if sha256.is_some() {
            return Err("`#sha256=` applies to downloaded models only".into());
        }
        Ok(Self::File(PathBuf::from(text)))
    }
}

fn is_sha256(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `segments` joined into a relative path that cannot leave the cache folder.
fn safe_path(segments: &[&str]) -> Result<PathBuf, String> {
    let mut path = PathBuf::new();
    for segment in segments.iter().flat_map(|s| s.split('/')) {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains('\\') {
            return Err(format!(
                "`{segment}` is not allowed in a model reference's path"
            ));
        }
        path.push(segment);
    }
    Ok(path)
}

/// The folder downloaded models are kept in: the configured one, else `refbook/models`
/// in the user's cache folder.
pub fn cache_folder(configured: Option<&Path>) -> Option<PathBuf> {
    configured
        .map(Path::to_path_buf)
        .or_else(|| dirs::cache_dir().map(|dir| dir.join("refbook").join("models")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "https://huggingface.co";

    #[test]
    fn hub_references_name_the_resolve_address_and_a_cache_place() {
        let ModelRef::Remote(remote) = ModelRef::parse(DEFAULT_LOCAL_MODEL, HUB).unwrap() else {
            panic!("the default is downloaded");
        };
        assert_eq!(
            remote.url,
            "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf"
        );
        assert!(remote.hub);
        assert_eq!(
            remote.cache_path,
            Path::new("huggingface/Qwen/Qwen2.5-0.5B-Instruct-GGUF/main/qwen2.5-0.5b-instruct-q4_k_m.gguf")
        );
        assert_eq!(remote.file_name(), "qwen2.5-0.5b-instruct-q4_k_m.gguf");

        let pinned = format!("hf:a/b@v1.0/dir/m.gguf#sha256={}", "AB".repeat(32));
        let ModelRef::Remote(remote) = ModelRef::parse(&pinned, "http://mirror/").unwrap() else {
            panic!("remote");
        };
        assert_eq!(remote.url, "http://mirror/a/b/resolve/v1.0/dir/m.gguf");
        assert_eq!(remote.sha256, Some("ab".repeat(32)));
        assert_eq!(
            remote.cache_path,
            Path::new("huggingface/a/b/v1.0/dir/m.gguf")
        );
    }

    #[test]
    fn urls_and_paths_are_told_apart_and_escapes_refused() {
        let ModelRef::Remote(remote) =
            ModelRef::parse("https://example.com/models/m.gguf?download=1", HUB).unwrap()
        else {
            panic!("remote");
        };
        assert!(!remote.hub);
        assert_eq!(
            remote.cache_path,
            Path::new("url/example.com/models/m.gguf")
        );
        assert_eq!(
            ModelRef::parse("/srv/models/m.gguf", HUB).unwrap(),
            ModelRef::File("/srv/models/m.gguf".into())
        );
        for bad in [
            "hf:a/b",
            "hf:a/../../etc/passwd",
            "https://example.com/../x.gguf",
            "hf:a/b/m.gguf#sha256=123",
            "/srv/m.gguf#sha256=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(ModelRef::parse(bad, HUB).is_err(), "{bad}");
        }
    }
}
