//! Messages a client appends or deletes itself, without asking the model.

use super::Conversations;
use crate::cluster::Notice;
use crate::domain::{ConversationId, Message, MessageId, MessageStatus, NewMessage};
use crate::domain::{Role, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::timestamp::Timestamp;

impl Conversations {
    /// Appends a message without asking the model (importing history).
    ///
    /// # Errors
    ///
    /// `NotFound` when the conversation is not the user's, `InvalidInput` for bad content;
    /// `Internal` when the database fails.
    pub async fn append_message(
        &self,
        user_id: UserId,
        id: ConversationId,
        role: Role,
        content: &str,
    ) -> Result<Message> {
        self.conversation(user_id, id).await?;
        let content = self.shared.clean_content(content)?;
        Ok(self
            .shared
            .store
            .add_message(id, NewMessage::complete(role, content), Timestamp::now())
            .await?)
    }

    /// Deletes a message (not one being generated: `409`).
    ///
    /// # Errors
    ///
    /// `NotFound` for another user's conversation or an unknown message, `Conflict` for a
    /// message being generated (here or on another instance); `Internal` when the database
    /// fails.
    pub async fn delete_message(
        &self,
        user_id: UserId,
        id: ConversationId,
        message_id: MessageId,
    ) -> Result<()> {
        self.conversation(user_id, id).await?;
        // Generating here, or (as stored) on another instance.
        let generating = match self.shared.replies.running(id) {
            Some(reply) if reply.message_id == message_id => true,
            _ => self
                .shared
                .store
                .message(id, message_id)
                .await?
                .is_some_and(|m| m.status == MessageStatus::Generating),
        };
        if generating {
            return Err(Error::new(
                ErrorKind::Conflict,
                "该消息正在生成，请先停止",
                "That message is being generated; stop it first",
            ));
        }
        if !self.shared.store.delete_message(id, message_id).await? {
            return Err(Error::not_found("消息", "Message"));
        }
        self.shared.replies.forget(id);
        self.shared.notify(Notice::Changed {
            conversation_id: id,
        });
        Ok(())
    }
}
