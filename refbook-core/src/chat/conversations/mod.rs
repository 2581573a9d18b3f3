//! The [`Conversations`] service: what a reader keeps — conversations (create, list,
//! read, rename, delete, here), their messages as stored (`messages.rs`) and personas
//! (`personas.rs`). Asking the model is [`Answering`](super::Answering)'s.

mod messages;
mod personas;

pub(crate) use personas::DEFAULT_PERSONA;

use super::limits::TITLE_MAX_CHARS;
use super::shared::Shared;
use super::Persona;
use crate::cluster::Notice;
use crate::domain::{Conversation, FinishReason, Isbn, Message};
use crate::domain::{ConversationId, PersonaId, UserId};
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

/// `NOT_FOUND` for a conversation that is not the user's (or is gone).
pub(crate) fn not_found_conversation() -> Error {
    Error::not_found("对话", "Conversation")
}

/// Conversations, their messages and personas, as stored. Cheap to clone.
#[derive(Clone)]
pub struct Conversations {
    shared: Shared,
    /// Built-in personas by key, once read.
    builtin_personas: moka::sync::Cache<String, Persona>,
}

impl std::fmt::Debug for Conversations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations").finish_non_exhaustive()
    }
}

impl Conversations {
    pub(super) fn new(shared: Shared) -> Self {
        Self {
            shared,
            builtin_personas: moka::sync::Cache::new(64),
        }
    }

    fn present(&self, mut conversation: Conversation) -> Conversation {
        conversation.book.cover_url = self
            .shared
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
        let book = self.shared.books.get(isbn).await?;
        let title = clean_title(title)?.unwrap_or_else(|| book.title.clone());
        let persona_id = self.check_persona(user_id, persona_id).await?;
        let conversation = self
            .shared
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
            .shared
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
            .shared
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
        let messages = self.shared.store.messages(id).await?;
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
            .shared
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
        if let Some(reply) = self.shared.replies.running(id) {
            reply.cancel(FinishReason::Cancelled);
            reply.finished().await;
        } else {
            // Generating on another instance, perhaps: its owner stops it.
            self.shared.notify(Notice::Stop {
                conversation_id: id,
            });
        }
        self.shared.store.delete_conversation(id, user_id).await?;
        self.shared.replies.forget(id);
        self.shared.notify(Notice::Changed {
            conversation_id: id,
        });
        Ok(())
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
