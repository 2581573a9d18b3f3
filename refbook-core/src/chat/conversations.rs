//! Conversations and their messages as stored: create, list, read, rename, delete, and
//! messages a client appends or deletes itself (generation is in `generate.rs`).

use super::{not_found_conversation, Chat, TITLE_MAX_CHARS};
use crate::cluster::Notice;
use crate::domain::{Conversation, FinishReason, Isbn, Message, MessageStatus, NewMessage, Role};
use crate::domain::{ConversationId, MessageId, PersonaId, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::timestamp::Timestamp;

impl Chat {
    fn present(&self, mut conversation: Conversation) -> Conversation {
        conversation.book.cover_url = self
            .books
            .present_cover(&conversation.isbn, conversation.book.cover_url.take());
        conversation
    }

    /// Creates a conversation about a book (looked up first; unknown `404`). The title
    /// defaults to the book's.
    ///
    /// # Errors
    ///
    /// `NotFound` for a book no source has or a persona the user cannot see, `InvalidInput`
    /// for a bad title, `UpstreamUnavailable` when every book source failed, `Internal`
    /// when the database fails.
    pub async fn create_conversation(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        title: Option<&str>,
        persona_id: Option<PersonaId>,
    ) -> Result<Conversation> {
        let book = self.books.get(isbn).await?;
        let title = clean_title(title)?.unwrap_or_else(|| book.title.clone());
        let persona_id = self.check_persona(user_id, persona_id).await?;
        let conversation = self
            .store
            .create_conversation(user_id, isbn, &title, persona_id, "api", Timestamp::now())
            .await?;
        Ok(self.present(conversation))
    }

    /// The user's conversations, most recently active first.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn conversations(
        &self,
        user_id: UserId,
        isbn: Option<&Isbn>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Conversation>)> {
        let (count, list) = self
            .store
            .conversations(user_id, isbn, limit, offset)
            .await?;
        Ok((count, list.into_iter().map(|c| self.present(c)).collect()))
    }

    /// One conversation of the user's.
    ///
    /// # Errors
    ///
    /// `NotFound` when the conversation is not the user's; `Internal` when the database
    /// fails.
    pub async fn conversation(&self, user_id: UserId, id: ConversationId) -> Result<Conversation> {
        let conversation = self
            .store
            .conversation(id, user_id)
            .await?
            .ok_or_else(not_found_conversation)?;
        Ok(self.present(conversation))
    }

    /// A conversation with its messages, oldest first.
    ///
    /// # Errors
    ///
    /// As [`conversation`](Self::conversation).
    pub async fn conversation_with_messages(
        &self,
        user_id: UserId,
        id: ConversationId,
    ) -> Result<(Conversation, Vec<Message>)> {
        let conversation = self.conversation(user_id, id).await?;
        let messages = self.store.messages(id).await?;
        Ok((conversation, messages))
    }

    /// Renames and/or changes the persona (`Some(None)`: back to the default).
    ///
    /// # Errors
    ///
    /// `NotFound` for another user's conversation or an unknown persona, `InvalidInput` for
    /// a bad title; `Internal` when the database fails.
    pub async fn update_conversation(
        &self,
        user_id: UserId,
        id: ConversationId,
        title: Option<&str>,
        persona_id: Option<Option<PersonaId>>,
    ) -> Result<Conversation> {
        let title = clean_title(title)?;
        let persona_id = match persona_id {
            Some(Some(pid)) => Some(self.check_persona(user_id, Some(pid)).await?),
            other => other,
        };
        let conversation = self
            .store
            .update_conversation(id, user_id, title.as_deref(), persona_id, Timestamp::now())
            .await?
            .ok_or_else(not_found_conversation)?;
        Ok(self.present(conversation))
    }

    /// Deletes a conversation (stopping its reply first).
    ///
    /// # Errors
    ///
    /// `NotFound` when the conversation is not the user's; `Internal` when the database
    /// fails.
    pub async fn delete_conversation(&self, user_id: UserId, id: ConversationId) -> Result<()> {
        self.conversation(user_id, id).await?;
        if let Some(reply) = self.replies.running(id) {
            reply.cancel(FinishReason::Cancelled);
            reply.finished().await;
        } else {
            // Generating on another instance, perhaps: its owner stops it.
            self.notify(Notice::Stop {
                conversation_id: id,
            });
        }
        self.store.delete_conversation(id, user_id).await?;
        self.replies.forget(id);
        self.notify(Notice::Changed {
            conversation_id: id,
        });
        Ok(())
    }

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
        let content = self.clean_content(content)?;
        Ok(self
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
        let generating = match self.replies.running(id) {
            Some(reply) if reply.message_id == message_id => true,
            _ => self
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
        if !self.store.delete_message(id, message_id).await? {
            return Err(Error::not_found("消息", "Message"));
        }
        self.replies.forget(id);
        self.notify(Notice::Changed {
            conversation_id: id,
        });
        Ok(())
    }

    pub(super) fn clean_content(&self, content: &str) -> Result<String> {
        crate::text::refuse_controls("content", content)?;
        let trimmed = content.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(
                "content",
                "消息不能为空",
                "content must not be empty",
            ));
        }
        if content.chars().count() > self.limits.max_message_chars {
            return Err(Error::invalid(
                "content",
                format!("消息不能超过 {} 个字符", self.limits.max_message_chars),
                format!(
                    "content must be at most {} characters",
                    self.limits.max_message_chars
                ),
            ));
        }
        Ok(content.to_owned())
    }
}

/// A title: trimmed, 1–100 characters; `None` when not given.
fn clean_title(title: Option<&str>) -> Result<Option<String>> {
    match title.map(str::trim) {
        None => Ok(None),
        Some(t)
            if (1..=TITLE_MAX_CHARS).contains(&t.chars().count())
                && !t.chars().any(char::is_control) =>
        {
            Ok(Some(t.to_owned()))
        }
        Some(_) => Err(Error::invalid(
            "title",
            "标题须为 1–100 个字符",
            "title must be 1–100 characters",
        )),
    }
}
