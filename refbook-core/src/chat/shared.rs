//! What both chat services share.

use std::sync::Arc;

use super::exchange::checked_content;
use super::limits::ChatLimits;
use super::reply::Replies;
use crate::books::Books;
use crate::cluster::{Cluster, Notice};
use crate::guide::Guides;
use crate::store::Store;

/// What both services share: the store, the books, the replies running in this process,
/// the limits, and the other instances (when replies are shared through Redis).
#[derive(Clone)]
pub(super) struct Shared {
    pub store: Arc<dyn Store>,
    pub books: Arc<Books>,
    pub guides: Arc<Guides>,
    pub replies: Replies,
    pub limits: ChatLimits,
    pub cluster: Option<Cluster>,
}

impl Shared {
    /// Tells the other instances, if any, that the conversation changed.
    pub fn notify(&self, notice: Notice) {
        if let Some(cluster) = &self.cluster {
            cluster.notify(notice);
        }
    }

    /// `content` as a message may hold it (see [`checked_content`]).
    pub fn clean_content(&self, content: &str) -> crate::error::Result<String> {
        checked_content(content, self.limits.max_message_chars)
    }
}
