//! A book's guide (深度解析): a summary of every section and of the whole book, built in the
//! background from a stored text.

use serde::Serialize;

/// Where a text's guide is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuideState {
    /// Summaries are being written (those done are served).
    Building,
    /// Every summary the budget allowed is written.
    Ready,
    /// The model failed on it (the reason is kept); what was written is served.
    Failed,
}

impl GuideState {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "building" => Some(Self::Building),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One summary of a guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideEntry {
    /// The section it summarises; `None` for the whole book.
    pub section: Option<u32>,
    /// The summary.
    pub summary: String,
}

/// A text's guide as stored: its state and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuideRecord {
    /// `None` until building starts.
    pub state: Option<GuideState>,
    /// Why it failed.
    pub error: Option<String>,
    /// Estimated tokens spent on it (prompts and summaries).
    pub tokens: u64,
    /// Its summaries, the book's first, then by section.
    pub entries: Vec<GuideEntry>,
}
