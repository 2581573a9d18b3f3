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
pub(crate) fn follow(
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
    let (conversation_id, message_id) = (message.conversation_id, message.id);
    let mut seen = (
        message.reasoning.clone().unwrap_or_default(),
        message.content.clone(),
    );
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(reply) = weak.upgrade() else {
                return; // nobody listens any more
            };
            match store.message(conversation_id, message_id).await {
                Ok(Some(now)) => {
                    reply.push_stored_text(&now, &seen.0, &seen.1);
                    seen = (
                        now.reasoning.clone().unwrap_or_default(),
                        now.content.clone(),
                    );
                    if now.status != MessageStatus::Generating {
                        reply.push_stored_ending(&now);
                        reply.finish(now.status);
                        return;
                    }
                }
                Ok(None) => {
                    reply.push(ReplyEvent::Error {
                        code: "NOT_FOUND",
                        message: "这条回复已被删除 / This reply was deleted".into(),
                    });
                    reply.finish(MessageStatus::Failed);
                    return;
                }
                Err(err) => tracing::debug!(error = %err, "following a reply: the read failed"),
            }
        }
    });
    reply
}
