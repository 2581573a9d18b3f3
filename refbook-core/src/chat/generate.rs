//! Asking the model: questions, regeneration, the stateless endpoint, stop, re-attaching
//! and shutdown — the [`Chat`] methods that claim a reply and start its generation.
//!
//! One question: content and quota are checked; two light reads run at once (the
//! conversation's owner, book and persona; the history tail the prompt can hold); then,
//! again at once, one transaction claims the reply (conversation lock, per-user cap,
//! lease) storing the question and the empty reply, and the model is asked. A refused
//! claim drops the model's stream unread; a model that refuses before answering undoes
//! the claim, so no dangling question stays behind.

use std::sync::Arc;
use std::time::Duration;

use super::reply::driver::{lease_end, Generation};
use super::reply::remote;
use super::{prompt, Chat, Message, Reply, Role};
use crate::books::Isbn;
use crate::cluster::Notice;
use crate::domain::{ConversationId, MessageId, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::llm::{ChatRequest, ModelError, ModelStream, Sampling};
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

/// A claimed reply with the permit that counts it against the global cap.
struct Claimed {
    stored: ClaimedReply,
    permit: tokio::sync::OwnedSemaphorePermit,
}

fn server_busy() -> Error {
    Error::new(
        ErrorKind::Busy,
        "服务器正忙，同时生成的回复太多，请稍后再试",
        "The server is generating as many replies as it can; please try again shortly",
    )
    .with_retry_after(Duration::from_secs(5))
}

/// What a turn asks: the earlier turns to consider and the question.
struct Turn<'a> {
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

/// `RATE_LIMIT`: the user already has the most replies generating at once.
pub(super) fn too_many_for_user() -> Error {
    Error::new(
        ErrorKind::RateLimited,
        "同时进行的对话过多，请稍后再试",
        "Too many replies are being generated at once; please wait",
    )
    .with_retry_after(Duration::from_secs(5))
}

impl Chat {
    /// One of this process's generation permits (`SERVER_BUSY` at the global cap).
    pub(super) fn generation_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.generations
            .clone()
            .try_acquire_owned()
            .map_err(|_| server_busy())
    }

    pub(super) async fn check_quota(&self, user_id: UserId) -> Result<()> {
        if self.limits.daily_token_quota == 0 {
            return Ok(());
        }
        let used = self
            .store
            .usage_on(user_id, &Timestamp::now().utc_day())
            .await?;
        if used >= i64::try_from(self.limits.daily_token_quota).unwrap_or(i64::MAX) {
            return Err(Error::new(
                ErrorKind::QuotaExceeded,
                "今日额度已用完（余额不足），明天再来吧",
                "Today's token quota is used up",
            ));
        }
        Ok(())
    }

    /// Claims a reply in the conversation (storing `question` with it), holding one of
    /// this process's generation permits.
    async fn claim(
        &self,
        target: &ReplyTarget,
        question: Option<&str>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Claimed> {
        let claim = ReplyClaim {
            conversation_id: target.id,
            user_id: target.user_id,
            owner: &self.owner,
            lease_until: lease_end(self.limits.reply_lease),
            max_per_user: self.limits.max_concurrent,
            question,
        };
        let stored = match self.store.claim_reply(claim, Timestamp::now()).await {
            Ok(outcome) => outcome.map_err(refused)?,
            // Deleted since it was read.
            Err(StoreError::NotFound) => return Err(super::not_found_conversation()),
            Err(err) => return Err(err.into()),
        };
        Ok(Claimed { stored, permit })
    }

    /// The conversation as generation needs it (`NOT_FOUND` when not the user's).
    pub(super) async fn reply_target(
        &self,
        user_id: UserId,
        id: ConversationId,
    ) -> Result<ReplyTarget> {
        self.store
            .reply_target(id, user_id)
            .await?
            .ok_or_else(super::not_found_conversation)
    }

    /// The usable history turns of a conversation: only as many of the newest as the
    /// prompt budget could hold.
    async fn history_tail(&self, id: ConversationId) -> Result<Vec<(Role, String)>> {
        // An estimated token is at most four characters.
        let max_chars = self.limits.prompt_budget().max(0).saturating_mul(4);
        Ok(prompt::history_of(
            &self.store.history_tail(id, max_chars).await?,
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
        let content = self.clean_content(content)?;
        self.check_quota(user_id).await?;
        // Two light reads at once: the conversation (ownership, book, persona) and as
        // much of its history as the prompt could hold.
        let (target, history) =
            tokio::try_join!(self.reply_target(user_id, id), self.history_tail(id))?;
        let turn = Turn {
            history,
            question: &content,
        };
        self.start(&target, Some(&content), turn).await
    }

    /// Replaces the last assistant reply with a new one (or answers a last question that
    /// has none).
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask); `INVALID_PARAMS` when there is no question to answer.
    pub async fn regenerate(&self, user_id: UserId, id: ConversationId) -> Result<Started> {
        let conversation = self.conversation(user_id, id).await?;
        self.check_quota(user_id).await?;
        let messages = self.store.messages(id).await?;
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
        let turn = Turn {
            history: prompt::history_of(&messages[..question_at]),
            question: &messages[question_at].content,
        };
        let started = self
            .start(&ReplyTarget::from(&conversation), None, turn)
            .await?;
        self.store.delete_messages(id, &replaced).await?;
        self.replies.forget(id);
        Ok(started)
    }

    /// Claims the reply (storing `question` with it) and asks the model, both at once —
    /// the claim's transaction is not in front of the first token — then starts the
    /// reply's task. A refused claim drops the model's stream unread (the request is
    /// cancelled); a model that refuses undoes the claim, so nothing stays behind.
    async fn start(
        &self,
        target: &ReplyTarget,
        question: Option<&str>,
        turn: Turn<'_>,
    ) -> Result<Started> {
        let permit = self.generation_permit()?;
        let (claimed, opened) = tokio::join!(
            self.claim(target, question, permit),
            self.open_stream(target, &turn)
        );
        let Claimed {
            stored: ClaimedReply { question, reply },
            permit,
        } = claimed?;
        let (stream, prompt_estimate) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                let undone = self
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
            store: self.store.clone(),
            replies: self.replies.clone(),
            owner: self.owner.clone(),
            user_id: target.user_id,
            lease: self.limits.reply_lease,
            save_timeout: self.limits.reply_save_timeout,
            prompt_estimate,
            calibration: self.calibration.clone(),
            max_reply_bytes: self.limits.max_reply_bytes,
            observer: self.observer.clone(),
            _permit: permit,
        }
        .spawn(buffer.clone(), stream);
        if let Some(cluster) = &self.cluster {
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

    /// Builds the prompt within the budget and opens the model's stream. A model that
    /// says the prompt exceeds its context is asked once more with half the budget.
    async fn open_stream(
        &self,
        target: &ReplyTarget,
        turn: &Turn<'_>,
    ) -> Result<(ModelStream, i64)> {
        let book = self.books.get(&target.isbn).await?;
        let persona = self.persona_of(target).await?;
        let system = prompt::system_prompt(&book, &persona, turn.question);
        let mut budget = self.limits.prompt_budget();
        for attempt in 0..2 {
            let messages = prompt::build(
                system.clone(),
                &turn.history,
                turn.question,
                budget,
                self.calibration.ratio(),
            )
            .map_err(|_| question_too_long())?;
            let prompt_estimate = prompt::estimate_prompt(&messages);
            tracing::debug!(
                conversation_id = %target.id,
                prompt_messages = messages.len(),
                prompt_estimate,
                budget,
                "asking the model"
            );
            let request = ChatRequest {
                messages,
                user: target.user_id.to_string(),
                max_tokens: Some(self.limits.max_tokens),
                sampling: Sampling::default(),
            };
            match self.model.stream(request).await {
                Ok(stream) => return Ok((stream, prompt_estimate)),
                Err(ModelError::ContextExceeded) if attempt == 0 => {
                    tracing::warn!(
                        conversation_id = %target.id,
                        budget,
                        "the model said the prompt exceeds its context; trimming harder \
                         (check REFBOOK_LLM_CONTEXT_TOKENS against the model's context)"
                    );
                    budget /= 2;
                }
                Err(err) => {
                    tracing::warn!(conversation_id = %target.id, error = %err, "the model refused");
                    return Err(err.into());
                }
            }
        }
        Err(question_too_long())
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
        messages: &[(String, String)],
        conversation_id: Option<ConversationId>,
    ) -> Result<(ConversationId, Started)> {
        let (turns, question) = self.stateless_turns(messages)?;
        let book = self.books.get(isbn).await?;
        self.check_quota(user_id).await?;
        let (conversation, created) = match conversation_id {
            Some(cid) => {
                let conversation = self.conversation(user_id, cid).await?;
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
                self.store
                    .stateless_conversation(user_id, isbn, &book.title, Timestamp::now())
                    .await?
            }
        };
        let turn = Turn {
            history: turns,
            question: &question,
        };
        let started = self
            .start(&ReplyTarget::from(&conversation), Some(&question), turn)
            .await;
        match started {
            Ok(started) => Ok((conversation.id, started)),
            Err(err) => {
                if created {
                    let _ = self
                        .store
                        .delete_conversation_if_empty(conversation.id)
                        .await;
                }
                Err(err)
            }
        }
    }

    /// Checks a stateless exchange: `(earlier turns, question)`.
    fn stateless_turns(
        &self,
        messages: &[(String, String)],
    ) -> Result<(Vec<(Role, String)>, String)> {
        if messages.is_empty() || messages.len() > self.limits.max_messages {
            return Err(Error::invalid(
                "messages",
                format!("messages 须为 1–{} 条", self.limits.max_messages),
                format!("messages must hold 1–{} entries", self.limits.max_messages),
            ));
        }
        let mut turns = Vec::with_capacity(messages.len());
        for (role, content) in messages {
            let role = match role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => {
                    return Err(Error::invalid(
                        "messages",
                        "不接受客户端的 system 消息",
                        "system messages are written by the server",
                    ))
                }
                _ => {
                    return Err(Error::invalid(
                        "messages",
                        "role 须为 user 或 assistant",
                        "role must be user or assistant",
                    ))
                }
            };
            turns.push((role, self.clean_content(content)?));
        }
        let Some((Role::User, question)) = turns.pop() else {
            return Err(Error::invalid(
                "messages",
                "最后一条消息须为用户的提问",
                "The last message must be the user's",
            ));
        };
        Ok((turns, question))
    }
}

/// `INVALID_PARAMS`: the question does not fit the model's context.
pub(super) fn question_too_long() -> Error {
    Error::invalid(
        "content",
        "问题太长，超出了 AI 模型的上下文长度，请缩短后再问",
        "The question is too long for the AI model's context; please shorten it",
    )
}
