//! A reply generating in another process on the same database: rebuilt from its stored
//! message and followed through the owner's checkpoints until it ends. Positions are
//! derived from the text, so they match the owner's.

use std::sync::Arc;
use std::time::Duration;

use super::buffer::Reply;
use super::event::ReplyEvent;
use crate::chat::{Message, MessageStatus};
use crate::store::Store;

/// The reply of a stored message; while it is `generating`, a task reads its checkpoints
/// every `every` for as long as anyone holds the reply.
pub(crate) fn follow_stored(
    store: Arc<dyn Store>,
    message: &Message,
    model: String,
    every: Duration,
) -> Arc<Reply> {
    let reply = Reply::from_stored(message, model);
    if message.status != MessageStatus::Generating {
        return reply;
    }
    let weak = Arc::downgrade(&reply);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(reply) = weak.upgrade() else {
                return; // nobody listens any more
            };
            if from_database(store.as_ref(), &reply).await {
                return;
            }
        }
    });
    reply
}

/// Brings `reply` up to its stored message's last checkpoint, and ends it as stored when
/// the message no longer generates (or was deleted); `true` when it ended.
pub(super) async fn from_database(store: &dyn Store, reply: &Reply) -> bool {
    match store.message(reply.conversation_id, reply.message_id).await {
        Ok(Some(now)) => {
            let (reasoning, content) = reply.texts();
            reply.push_stored_text(&now, &reasoning, &content);
            if now.status == MessageStatus::Generating {
                return false;
            }
            if !reply.has_ending() {
                reply.push_stored_ending(&now);
            }
            reply.finish(now.status);
            true
        }
        Ok(None) => {
            reply.push(ReplyEvent::Error {
                code: "NOT_FOUND",
                message: "这条回复已被删除 / This reply was deleted".into(),
            });
            reply.finish(MessageStatus::Failed);
            true
        }
        Err(err) => {
            tracing::debug!(error = %err, "following a reply: the read failed");
            false
        }
    }
}
