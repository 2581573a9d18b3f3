//! Questions that are kept: a question in a conversation, regeneration and the stateless
//! endpoint — the [`Answering`] methods that claim a reply and start its generation.
//!
//! One question: content and quota are checked; two light reads run at once (the
//! conversation's owner, book and persona; the history tail the prompt can hold); then,
//! again at once, one transaction claims the reply (conversation lock, per-user cap,
//! lease) storing the question and the empty reply, and the model is asked. A refused
//! claim drops the model's stream unread; a model that refuses before answering undoes
//! the claim, so no dangling question stays behind.

use std::sync::Arc;

use super::step::{Opened, Question};
use super::{too_many_for_user, Answering};
use crate::books::{Book, Isbn};
use crate::chat::conversations::not_found_conversation;
use crate::chat::exchange::{ClientMessage, Exchange, ExchangeRules};
use crate::chat::reply::driver::{lease_end, Generation};
use crate::chat::reply::remote;
use crate::chat::{prompt, Message, Reply, Role};
use crate::cluster::Notice;
use crate::domain::{ConversationId, MessageId, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::llm::Sampling;
use crate::store::{ClaimRefused, ClaimedReply, ReplyClaim, ReplyTarget, StoreError};
use crate::timestamp::Timestamp;

/// A generation that was started: the stored question (if any) and the reply.
#[derive(Debug, Clone)]
pub struct Started {
    /// The user message stored for this turn (`None` for a regeneration).
    pub user_message: Option<Message>,
    /// The reply being generated.
    pub reply: Arc<Reply>,
}

/// What a kept question asks: the earlier turns to consider and the question.
struct Asked<'a> {
    history: Vec<(Role, String)>,
    question: &'a str,
}

fn refused(refusal: ClaimRefused) -> Error {
    match refusal {
        ClaimRefused::ConversationBusy => Error::new(
            ErrorKind::Conflict,
            "这个对话正在生成回复，请稍候或先停止",
            "A reply is already being generated in this conversation",
        ),
        ClaimRefused::TooManyForUser => too_many_for_user(),
    }
}

impl Answering {
    /// Claims a reply in the conversation (storing `question` with it).
    async fn claim(&self, target: &ReplyTarget, question: Option<&str>) -> Result<ClaimedReply> {
        let claim = ReplyClaim {
            conversation_id: target.id,
            user_id: target.user_id,
            owner: self.owner.to_string(),
            lease_until: lease_end(self.shared.limits.reply_lease),
            max_per_user: self.shared.limits.max_concurrent,
            question: question.map(str::to_owned),
        };
        let stored = match self.shared.store.claim_reply(claim, Timestamp::now()).await {
            Ok(outcome) => outcome.map_err(refused)?,
            // Deleted since it was read.
            Err(StoreError::NotFound) => return Err(not_found_conversation()),
            Err(err) => return Err(err.into()),
        };
        Ok(stored)
    }

    /// The conversation as generation needs it (`NOT_FOUND` when not the user's).
    pub(super) async fn reply_target(
        &self,
        user_id: UserId,
        id: ConversationId,
    ) -> Result<ReplyTarget> {
        self.shared
            .store
            .reply_target(id, user_id)
            .await?
            .ok_or_else(not_found_conversation)
    }

    /// The usable history turns of a conversation: only as many of the newest as the
    /// prompt budget could hold.
    async fn history_tail(&self, id: ConversationId) -> Result<Vec<(Role, String)>> {
        // An estimated token is at most four characters.
        let max_chars = self.shared.limits.prompt_budget().max(0).saturating_mul(4);
        Ok(prompt::history_of(
            &self.shared.store.history_tail(id, max_chars).await?,
        ))
    }

    /// Stores `content` as the user's question and starts the reply. Errors before the
    /// reply starts (validation, quota, `409`, `429`, a model refusing at once) leave
    /// nothing stored.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for another user's conversation, `INVALID_PARAMS` for bad content or a
    /// question too long for the model's context, `QUOTA_EXCEEDED`, `CONFLICT` while a
    /// reply generates there, `RATE_LIMIT` over the per-user cap, `MODEL_ERROR`.
    pub async fn ask(&self, user_id: UserId, id: ConversationId, content: &str) -> Result<Started> {
        let content = self.shared.clean_content(content)?;
        self.check_quota(user_id).await?;
        // Two light reads at once: the conversation (ownership, book, persona) and its
        // book, and as much of its history as the prompt could hold.
        let ((target, book), history) = tokio::try_join!(
            async {
                let target = self.reply_target(user_id, id).await?;
                let book = self.shared.books.get(&target.isbn).await?;
                Ok::<_, Error>((target, book))
            },
            self.history_tail(id)
        )?;
        let asked = Asked {
            history,
            question: &content,
        };
        self.start(&target, &book, Some(&content), asked).await
    }

    /// Replaces the last assistant reply with a new one (or answers a last question that
    /// has none).
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask); `INVALID_PARAMS` when there is no question to answer.
    pub async fn regenerate(&self, user_id: UserId, id: ConversationId) -> Result<Started> {
        let conversation = self.conversations.conversation(user_id, id).await?;
        self.check_quota(user_id).await?;
        let book = self.shared.books.get(&conversation.isbn).await?;
        let messages = self.shared.store.messages(id).await?;
        let Some(question_at) = messages.iter().rposition(|m| m.role == Role::User) else {
            return Err(Error::invalid(
                "conversation",
                "没有可以重新回答的问题",
                "There is no question to answer again",
            ));
        };
        let replaced: Vec<MessageId> = messages[question_at + 1..]
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.id)
            .collect();
        let asked = Asked {
            history: prompt::history_of(&messages[..question_at]),
            question: &messages[question_at].content,
        };
        let started = self
            .start(&ReplyTarget::from(&conversation), &book, None, asked)
            .await?;
        self.shared.store.delete_messages(id, &replaced).await?;
        self.shared.replies.forget(id);
        Ok(started)
    }

    /// Claims the reply (storing `question` with it) and asks the model about `book`,
    /// both at once — the claim's transaction is not in front of the first token — then
    /// takes the user's place among their replies and starts the reply's task. A refused
    /// claim drops the model's stream unread (the request is cancelled); a user at the
    /// cap, or a model that refuses, undoes the claim, so nothing stays behind.
    async fn start(
        &self,
        target: &ReplyTarget,
        book: &Book,
        question: Option<&str>,
        asked: Asked<'_>,
    ) -> Result<Started> {
        let permit = self.generation_permit()?;
        let (claimed, opened) = tokio::join!(self.claim(target, question), async {
            let persona = self.conversations.persona_of(target).await?;
            self.open_answer(Question {
                book,
                persona: &persona,
                instructions: None,
                history: &asked.history,
                question: asked.question,
                unfinished: None,
                user_id: target.user_id,
                conversation_id: Some(target.id),
                max_tokens: self.shared.limits.max_tokens,
                sampling: Sampling::default(),
                tools: None,
            })
            .await
        });
        let ClaimedReply { question, reply } = claimed?;
        // The user's place among all their replies, however started, is taken after the
        // claim, so a busy conversation answers `409` rather than the cap's `429`.
        let slot = self.reply_slot(target.user_id).await;
        let started = slot.and_then(|slot| opened.map(|opened| (slot, opened)));
        let (
            slot,
            Opened {
                stream,
                prompt_estimate,
                sources,
            },
        ) = match started {
            Ok(started) => started,
            Err(err) => {
                let undone = self
                    .shared
                    .store
                    .abandon_reply(reply.id, question.as_ref().map(|q| q.id))
                    .await;
                if let Err(undo) = undone {
                    tracing::error!(error = %undo, "undoing a refused question failed; its lease will settle it");
                }
                return Err(err);
            }
        };
        let buffer = Reply::of_message(&reply, self.model.model_name().to_owned());
        Generation {
            store: self.shared.store.clone(),
            replies: self.replies().clone(),
            owner: self.owner.clone(),
            user_id: target.user_id,
            lease: self.shared.limits.reply_lease,
            save_timeout: self.shared.limits.reply_save_timeout,
            prompt_estimate,
            calibration: self.calibration.clone(),
            max_reply_bytes: self.shared.limits.max_reply_bytes,
            observer: self.observer.clone(),
            sources: sources.into(),
            _permit: permit,
            _slot: slot,
        }
        .spawn(buffer.clone(), stream);
        if let Some(cluster) = &self.shared.cluster {
            remote::publish_reply(cluster, &buffer);
            // Other instances forget the conversation's finished reply they may keep.
            cluster.notify(Notice::Changed {
                conversation_id: target.id,
            });
        }
        Ok(Started {
            user_message: question,
            reply: buffer,
        })
    }

    /// The stateless endpoint: the client sends the whole exchange; the last message must
    /// be the user's and `system` messages are refused. The turn is recorded in
    /// `conversation_id` (the caller's) or in the caller's stateless conversation for the
    /// book (one per user and book, created on first use; not left behind empty when the
    /// request is refused). Returns the conversation id and the started reply.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask); `INVALID_PARAMS` for a malformed exchange.
    pub async fn stateless(
        &self,
        user_id: UserId,
        isbn: &Isbn,
        messages: Vec<ClientMessage>,
        conversation_id: Option<ConversationId>,
    ) -> Result<(ConversationId, Started)> {
        let limits = &self.shared.limits;
        let exchange = Exchange::check(
            messages,
            ExchangeRules {
                max_messages: limits.max_messages,
                max_message_chars: limits.max_message_chars,
                instructions: false,
            },
        )?;
        let book = self.shared.books.get(isbn).await?;
        self.check_quota(user_id).await?;
        let (conversation, created) = match conversation_id {
            Some(cid) => {
                let conversation = self.conversations.conversation(user_id, cid).await?;
                if conversation.isbn != *isbn {
                    return Err(Error::invalid(
                        "conversation_id",
                        "该对话属于另一本书",
                        "That conversation is about another book",
                    ));
                }
                (conversation, false)
            }
            None => {
                self.shared
                    .store
                    .stateless_conversation(user_id, isbn, &book.title, Timestamp::now())
                    .await?
            }
        };
        let asked = Asked {
            history: exchange.history,
            question: &exchange.question,
        };
        let started = self
            .start(
                &ReplyTarget::from(&conversation),
                &book,
                Some(&exchange.question),
                asked,
            )
            .await;
        match started {
            Ok(started) => Ok((conversation.id, started)),
            Err(err) => {
                if created {
                    let _ = self
                        .shared
                        .store
                        .delete_conversation_if_empty(conversation.id)
                        .await;
                }
                Err(err)
            }
        }
    }
}
