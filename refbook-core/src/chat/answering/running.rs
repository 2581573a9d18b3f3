//! A reply once started: stopping it (here or on another instance), re-attaching to it
//! (live here, followed from another instance, or rebuilt from the database), waiting for
//! it as stored.

use std::sync::Arc;
use std::time::Duration;

use super::{Answering, Started};
use crate::chat::reply::driver::CHECKPOINT_EVERY;
use crate::chat::reply::follow::follow_stored;
use crate::chat::reply::remote;
use crate::chat::{FinishReason, Message, Reply, Role};
use crate::cluster::Notice;
use crate::domain::{ConversationId, MessageId, UserId};
use crate::error::{Error, Result};

/// How long `stop/` waits for another instance to stop its reply; an owner that does not
/// answer (it died) leaves the reply to its lease, and the message is returned as stored.
const REMOTE_STOP_WAIT: Duration = Duration::from_secs(10);

impl Answering {
    /// Stops the reply being generated (here, or on another instance when they share
    /// replies); returns the stored (partial) message.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when nothing is generating in the conversation (here, without shared
    /// replies).
    pub async fn stop(&self, user_id: UserId, id: ConversationId) -> Result<Message> {
        let not_generating = || Error::not_found("生成中的回复", "Reply being generated");
        self.reply_target(user_id, id).await?;
        if let Some(reply) = self.replies().running(id) {
            reply.cancel(FinishReason::Cancelled);
            reply.finished().await;
            return self.message(id, reply.message_id).await;
        }
        let Some(cluster) = &self.shared.cluster else {
            return Err(not_generating());
        };
        let reply = self.reply_of(id).await?;
        if reply.is_finished() {
            return Err(not_generating());
        }
        cluster.notify(Notice::Stop {
            conversation_id: id,
        });
        if tokio::time::timeout(REMOTE_STOP_WAIT, reply.finished())
            .await
            .is_err()
        {
            tracing::warn!(
                conversation_id = %id,
                "the instance generating this reply did not stop it in time"
            );
        }
        self.message(id, reply.message_id).await
    }

    /// The reply of a turn this caller started, as stored once it has ended (waits for
    /// the end): what a client that does not stream is answered.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` when the conversation was deleted meanwhile; `Internal` when the
    /// database fails.
    pub async fn stored_reply(&self, started: &Started) -> Result<Message> {
        started.reply.finished().await;
        self.message(started.reply.conversation_id, started.reply.message_id)
            .await
    }

    /// A stored message of a conversation (its owner already checked).
    async fn message(&self, id: ConversationId, message_id: MessageId) -> Result<Message> {
        self.shared
            .store
            .message(id, message_id)
            .await?
            .ok_or_else(|| Error::not_found("消息", "Message"))
    }

    /// The reply being generated in the conversation, or the last one: live when this
    /// process generates it or finished it lately, else rebuilt from the database (and,
    /// while another process generates it, followed through its checkpoints).
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for another user's conversation or one without a reply.
    pub async fn attach(&self, user_id: UserId, id: ConversationId) -> Result<Arc<Reply>> {
        self.reply_target(user_id, id).await?;
        self.reply_of(id).await
    }

    /// The conversation's reply (see [`attach`](Self::attach)), its owner checked.
    async fn reply_of(&self, id: ConversationId) -> Result<Arc<Reply>> {
        if let Some(reply) = self.replies().current(id) {
            return Ok(reply);
        }
        if let Some(reply) = self.replies().followed(id) {
            return Ok(reply);
        }
        let messages = self.shared.store.messages(id).await?;
        let last = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .ok_or_else(|| Error::not_found("回复", "Reply"))?;
        let model = self.model.model_name().to_owned();
        let Some(cluster) = &self.shared.cluster else {
            return Ok(follow_stored(
                self.shared.store.clone(),
                last,
                model,
                CHECKPOINT_EVERY / 2,
            ));
        };
        let reply = remote::follow_live(
            cluster.clone(),
            self.shared.store.clone(),
            last,
            model,
            CHECKPOINT_EVERY / 2,
        )
        .await;
        if !reply.is_finished() {
            self.replies().follows(&reply);
        }
        Ok(reply)
    }
}
