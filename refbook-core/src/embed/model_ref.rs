//! [`EmbedRef`]: what `REFBOOK_EMBED_MODEL` names — nothing (`off`), a folder on this
//! machine holding a sentence-transformers model, or a model on the Hugging Face hub.

use std::path::PathBuf;

/// The embedder used when none is named: BAAI's bge-small-zh-v1.5 (24M parameters,
/// 512 dimensions, 95 MB), whose vocabulary holds Chinese characters and English word
/// pieces (see docs/GROUNDING.md for the choice).
pub const DEFAULT_EMBED_MODEL: &str = "hf:BAAI/bge-small-zh-v1.5";

/// The files a model folder must hold, then those it may hold.
pub const EMBED_MODEL_FILES: (&[&str], &[&str]) = (
    &["config.json", "tokenizer.json", "model.safetensors"],
    &["1_Pooling/config.json", "sentence_bert_config.json"],
);

/// Where the embedder comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedRef {
    /// No embedder: keyword search only.
    Off,
    /// A folder on this machine.
    Folder(PathBuf),
    /// A model on the hub: `OWNER/REPO` at `revision`.
    Hub {
        /// `OWNER/REPO`.
        repo: String,
        /// A branch, tag or commit (`main` unless named with `@`).
        revision: String,
    },
}

impl EmbedRef {
    /// Reads `off`, `hf:OWNER/REPO[@REVISION]` (or the same without `hf:`), or a path (one
    /// that exists, or that starts with `/`, `.` or `~`).
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with the reference.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || matches!(text, "off" | "none") {
            return Ok(Self::Off);
        }
        let path = PathBuf::from(text);
        if path.exists() || text.starts_with(['/', '.', '~']) {
            return Ok(Self::Folder(path));
        }
        let hub = text.strip_prefix("hf:").unwrap_or(text);
        let (repo, revision) = hub.split_once('@').unwrap_or((hub, "main"));
        let parts: Vec<&str> = repo.split('/').collect();
        let plain = |part: &str| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() != 2 || !parts.iter().all(|p| plain(p)) || !plain(revision) {
            return Err(format!(
                "`{text}` is neither `off`, a folder, nor a hub model `OWNER/REPO[@REVISION]`"
            ));
        }
        Ok(Self::Hub {
            repo: repo.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// The name stored beside the vectors the model makes.
    pub fn id(&self) -> String {
        match self {
            Self::Off => "off".to_owned(),
            Self::Folder(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            Self::Hub { repo, revision } => format!("{repo}@{revision}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_documented() {
        assert_eq!(EmbedRef::parse("off"), Ok(EmbedRef::Off));
        assert_eq!(
            EmbedRef::parse("BAAI/bge-small-zh-v1.5"),
            Ok(EmbedRef::Hub {
                repo: "BAAI/bge-small-zh-v1.5".into(),
                revision: "main".into()
            })
        );
        assert_eq!(
            EmbedRef::parse("hf:a/b@v2").map(|r| r.id()),
            Ok("a/b@v2".to_owned())
        );
        assert_eq!(
            EmbedRef::parse("/models/minilm"),
            Ok(EmbedRef::Folder("/models/minilm".into()))
        );
        assert!(EmbedRef::parse("a/../b").is_err());
        assert!(EmbedRef::parse("just-a-name").is_err());
    }
}
