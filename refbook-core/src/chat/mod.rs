//! Conversations and chat: personas, conversations and messages, the prompt, server-owned
//! generation ([`Replies`]), usage and quota, collections — behind the [`Chat`] service.

mod prompt;
mod records;
mod replies;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use records::{
    BookBrief, CollectionItem, Conversation, Message, MessageStatus, NewMessage, Persona, Role,
    TokenUsage,
};
pub use replies::{
    Generation, GenerationObserver, GenerationReport, Replies, Reply, ReplyEvent, ReplyListener,
    Slot,
};

use crate::books::{Books, Isbn};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::llm::{ChatModel, ChatRequest};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// `origin` of conversations created by the stateless `/api/chat/stream/` endpoint.
pub const STATELESS_ORIGIN: &str = "chat_stream";

/// The limits chat enforces.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    /// Daily tokens per user; 0 = unlimited.
    pub daily_token_quota: u64,
    /// Generations at once per user.
    pub max_concurrent: usize,
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// Most messages in a stateless request.
    pub max_messages: usize,
    /// Token budget of a prompt (system + history + question).
    pub context_tokens: i64,
}

impl ChatLimits {
    /// The limits in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            daily_token_quota: config.daily_token_quota,
            max_concurrent: config.max_concurrent_generations,
            max_message_chars: config.max_message_chars,
            max_messages: config.max_messages,
            context_tokens: i64::try_from(config.llm_context_tokens).unwrap_or(i64::MAX),
        }
    }
}

/// A generation that was started: the stored question (if any) and the reply.
#[derive(Debug, Clone)]
pub struct Started {
    /// The user message stored for this turn (`None` for a regeneration).
    pub user_message: Option<Message>,
    /// The reply being generated.
    pub reply: Arc<Reply>,
}

/// The chat service.
pub struct Chat {
    store: Arc<dyn Store>,
    books: Arc<Books>,
    model: Arc<dyn ChatModel>,
    replies: Replies,
    limits: ChatLimits,
    observer: Option<GenerationObserver>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("model", &self.model.model_name())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn not_found_conversation() -> Error {
    Error::not_found("对话", "Conversation")
}

impl Chat {
    /// The service.
    pub fn new(
        store: Arc<dyn Store>,
        books: Arc<Books>,
        model: Arc<dyn ChatModel>,
        limits: ChatLimits,
        observer: Option<GenerationObserver>,
    ) -> Self {
        Self {
            store,
            books,
            model,
            replies: Replies::default(),
            limits,
            observer,
        }
    }

    /// The running and recent replies.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        self.model.model_name()
    }

    // ---- personas -------------------------------------------------------------------

    /// Built-in personas and the user's own.
    pub async fn personas(&self, user_id: i64) -> Result<Vec<Persona>> {
        Ok(self.store.personas(user_id).await?)
    }

    /// One persona the user may see.
    pub async fn persona(&self, user_id: i64, id: i64) -> Result<Persona> {
        self.store
            .persona(id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("角色", "Persona"))
    }

    /// Creates a custom persona (name 1–32 characters, description 1–2000).
    pub async fn create_persona(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
    ) -> Result<Persona> {
        let name = name.trim();
        let description = description.trim();
        if !(1..=32).contains(&name.chars().count()) {
            return Err(Error::invalid(
                "name",
                "角色名须为 1–32 个字符",
                "name must be 1–32 characters",
            ));
        }
        if !(1..=2000).contains(&description.chars().count()) {
            return Err(Error::invalid(
                "description",
                "角色说明须为 1–2000 个字符",
                "description must be 1–2000 characters",
            ));
        }
        Ok(self
            .store
            .create_persona(user_id, name, description, Timestamp::now())
            .await?)
    }

    /// Deletes one of the user's personas; built-ins cannot be deleted (`400`).
    pub async fn delete_persona(&self, user_id: i64, id: i64) -> Result<()> {
        let persona = self.persona(user_id, id).await?;
        if persona.builtin {
            return Err(Error::invalid(
                "id",
                "内置角色不能删除",
                "Built-in personas cannot be deleted",
            ));
        }
        self.store.delete_persona(id, user_id).await?;
        Ok(())
    }

    async fn check_persona(&self, user_id: i64, persona_id: Option<i64>) -> Result<Option<i64>> {
        match persona_id {
            None => Ok(None),
            Some(id) => match self.store.persona(id, user_id).await? {
                Some(_) => Ok(Some(id)),
                None => Err(Error::invalid(
                    "persona_id",
                    "角色不存在",
                    "No such persona",
                )),
            },
        }
    }

    async fn persona_of(&self, conversation: &Conversation) -> Result<Persona> {
        if let Some(id) = conversation.persona_id {
            if let Some(persona) = self.store.persona(id, conversation.user_id).await? {
                return Ok(persona);
            }
        }
        self.store
            .builtin_persona("librarian")
            .await?
            .ok_or_else(|| Error::internal("the built-in librarian persona is missing"))
    }

    // ---- conversations ----------------------------------------------------------------

    fn present(&self, mut conversation: Conversation) -> Conversation {
        conversation.book.cover_url = self
            .books
            .present_cover(&conversation.isbn, conversation.book.cover_url.take());
        conversation
    }

    /// Creates a conversation about a book (looked up first; unknown `404`). The title
    /// defaults to the book's.
    pub async fn create_conversation(
        &self,
        user_id: i64,
        isbn: &Isbn,
        title: Option<&str>,
        persona_id: Option<i64>,
    ) -> Result<Conversation> {
        let book = self.books.get(isbn).await?;
        let title = clean_title(title)?.unwrap_or_else(|| book.title.clone());
        let persona_id = self.check_persona(user_id, persona_id).await?;
        let conversation = self
            .store
            .create_conversation(
                user_id,
                isbn.as_str(),
                &title,
                persona_id,
                "api",
                Timestamp::now(),
            )
            .await?;
        Ok(self.present(conversation))
    }

    /// The user's conversations, most recently active first.
    pub async fn conversations(
        &self,
        user_id: i64,
        isbn: Option<&Isbn>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Conversation>)> {
        let (count, list) = self
            .store
            .conversations(user_id, isbn.map(Isbn::as_str), limit, offset)
            .await?;
        Ok((count, list.into_iter().map(|c| self.present(c)).collect()))
    }

    /// One conversation of the user's.
    pub async fn conversation(&self, user_id: i64, id: i64) -> Result<Conversation> {
        let conversation = self
            .store
            .conversation(id, user_id)
            .await?
            .ok_or_else(not_found_conversation)?;
        Ok(self.present(conversation))
    }

    /// A conversation with its messages, oldest first.
    pub async fn conversation_with_messages(
        &self,
        user_id: i64,
        id: i64,
    ) -> Result<(Conversation, Vec<Message>)> {
        let conversation = self.conversation(user_id, id).await?;
        let messages = self.store.messages(id).await?;
        Ok((conversation, messages))
    }

    /// Renames and/or changes the persona (`Some(None)`: back to the default).
    pub async fn update_conversation(
        &self,
        user_id: i64,
        id: i64,
        title: Option<&str>,
        persona_id: Option<Option<i64>>,
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
    pub async fn delete_conversation(&self, user_id: i64, id: i64) -> Result<()> {
        self.conversation(user_id, id).await?;
        if let Some(reply) = self.replies.running(id) {
            reply.cancel();
            reply.finished().await;
        }
        self.store.delete_conversation(id, user_id).await?;
        self.replies.forget(id);
        Ok(())
    }

    /// Appends a message without asking the model (importing history).
    pub async fn append_message(
        &self,
        user_id: i64,
        id: i64,
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
    pub async fn delete_message(&self, user_id: i64, id: i64, message_id: i64) -> Result<()> {
        self.conversation(user_id, id).await?;
        if self
            .replies
            .running(id)
            .is_some_and(|r| r.message_id == message_id)
        {
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
        Ok(())
    }

    fn clean_content(&self, content: &str) -> Result<String> {
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

    // ---- generation ---------------------------------------------------------------------

    async fn check_quota(&self, user_id: i64) -> Result<()> {
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

    /// Stores `content` as the user's question and starts the reply. Errors before the
    /// reply starts (validation, quota, `409`, a model refusing at once) leave no reply.
    pub async fn ask(&self, user_id: i64, id: i64, content: &str) -> Result<Started> {
        let conversation = self.conversation(user_id, id).await?;
        let content = self.clean_content(content)?;
        self.check_quota(user_id).await?;
        let slot = self
            .replies
            .claim(id, user_id, self.limits.max_concurrent)?;
        let history = prompt::history_of(&self.store.messages(id).await?);
        let user_message = self
            .store
            .add_message(
                id,
                NewMessage::complete(Role::User, content.clone()),
                Timestamp::now(),
            )
            .await?;
        let reply = self
            .generate(slot, &conversation, history, &content)
            .await?;
        Ok(Started {
            user_message: Some(user_message),
            reply,
        })
    }

    /// Replaces the last assistant reply with a new one (or answers a last question that
    /// has none).
    pub async fn regenerate(&self, user_id: i64, id: i64) -> Result<Started> {
        let conversation = self.conversation(user_id, id).await?;
        self.check_quota(user_id).await?;
        let slot = self
            .replies
            .claim(id, user_id, self.limits.max_concurrent)?;
        let messages = self.store.messages(id).await?;
        let Some(question_at) = messages.iter().rposition(|m| m.role == Role::User) else {
            return Err(Error::invalid(
                "conversation",
                "没有可以重新回答的问题",
                "There is no question to answer again",
            ));
        };
        let question = messages[question_at].content.clone();
        let history = prompt::history_of(&messages[..question_at]);
        let replaced: Vec<i64> = messages[question_at + 1..]
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.id)
            .collect();
        let reply = self
            .generate(slot, &conversation, history, &question)
            .await?;
        for message_id in replaced {
            self.store.delete_message(id, message_id).await?;
        }
        Ok(Started {
            user_message: None,
            reply,
        })
    }

    /// Builds the prompt, calls the model, stores the placeholder reply and starts the task.
    async fn generate(
        &self,
        slot: Slot,
        conversation: &Conversation,
        history: Vec<(Role, String)>,
        question: &str,
    ) -> Result<Arc<Reply>> {
        let book = self.books.get(&Isbn::parse(&conversation.isbn)?).await?;
        let persona = self.persona_of(conversation).await?;
        let messages = prompt::build(
            prompt::system_prompt(&book, &persona),
            &history,
            question,
            self.limits.context_tokens,
        );
        let prompt_estimate = prompt::estimate_prompt(&messages);
        tracing::debug!(
            conversation_id = conversation.id,
            prompt_messages = messages.len(),
            prompt_estimate,
            "asking the model"
        );
        let stream = self
            .model
            .stream(ChatRequest {
                messages,
                user: conversation.user_id.to_string(),
            })
            .await
            .map_err(|err| {
                tracing::warn!(conversation_id = conversation.id, error = %err, "the model refused");
                Error::from(err)
            })?;
        let placeholder = NewMessage {
            role: Role::Assistant,
            content: String::new(),
            reasoning: None,
            status: MessageStatus::Generating,
            usage: None,
        };
        let message = self
            .store
            .add_message(conversation.id, placeholder, Timestamp::now())
            .await?;
        let reply = Reply::new(
            conversation.id,
            message.id,
            conversation.user_id,
            self.model.model_name().to_owned(),
        );
        self.replies.spawn(
            slot,
            reply.clone(),
            stream,
            Generation {
                store: self.store.clone(),
                prompt_estimate,
                observer: self.observer.clone(),
            },
        );
        Ok(reply)
    }

    /// Stops the reply being generated; returns the stored (partial) message. `404` when
    /// nothing is generating.
    pub async fn stop(&self, user_id: i64, id: i64) -> Result<Message> {
        self.conversation(user_id, id).await?;
        let reply = self
            .replies
            .running(id)
            .ok_or_else(|| Error::not_found("生成中的回复", "Reply being generated"))?;
        reply.cancel();
        reply.finished().await;
        self.message(id, reply.message_id).await
    }

    /// A stored message of a conversation.
    pub async fn message(&self, id: i64, message_id: i64) -> Result<Message> {
        self.store
            .message(id, message_id)
            .await?
            .ok_or_else(|| Error::not_found("消息", "Message"))
    }

    /// The reply being generated in the conversation, or the last one (rebuilt from the
    /// database when no longer in memory). `404` when there is none.
    pub async fn attach(&self, user_id: i64, id: i64) -> Result<Arc<Reply>> {
        self.conversation(user_id, id).await?;
        if let Some(reply) = self.replies.current(id) {
            return Ok(reply);
        }
        let messages = self.store.messages(id).await?;
        let last = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .ok_or_else(|| Error::not_found("回复", "Reply"))?;
        Ok(Reply::replay(last, self.model.model_name().to_owned()))
    }

    /// The stateless endpoint: the client sends the whole exchange; the last message must
    /// be the user's and `system` messages are refused. The turn is recorded in
    /// `conversation_id` (the caller's) or in the caller's stateless conversation for the
    /// book (created on first use). Returns the conversation id and the started reply.
    pub async fn stateless(
        &self,
        user_id: i64,
        isbn: &Isbn,
        messages: &[(String, String)],
        conversation_id: Option<i64>,
    ) -> Result<(i64, Started)> {
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
        let book = self.books.get(isbn).await?;
        let conversation = match conversation_id {
            Some(cid) => {
                let conversation = self.conversation(user_id, cid).await?;
                if conversation.isbn != isbn.as_str() {
                    return Err(Error::invalid(
                        "conversation_id",
                        "该对话属于另一本书",
                        "That conversation is about another book",
                    ));
                }
                conversation
            }
            None => match self
                .store
                .conversation_by_origin(user_id, isbn.as_str(), STATELESS_ORIGIN)
                .await?
            {
                Some(conversation) => conversation,
                None => {
                    self.store
                        .create_conversation(
                            user_id,
                            isbn.as_str(),
                            &book.title,
                            None,
                            STATELESS_ORIGIN,
                            Timestamp::now(),
                        )
                        .await?
                }
            },
        };
        self.check_quota(user_id).await?;
        let slot = self
            .replies
            .claim(conversation.id, user_id, self.limits.max_concurrent)?;
        let user_message = self
            .store
            .add_message(
                conversation.id,
                NewMessage::complete(Role::User, question.clone()),
                Timestamp::now(),
            )
            .await?;
        let reply = self.generate(slot, &conversation, turns, &question).await?;
        Ok((
            conversation.id,
            Started {
                user_message: Some(user_message),
                reply,
            },
        ))
    }

    /// At shutdown: waits up to `grace` for replies, then stops and stores the rest.
    pub async fn shutdown(&self, grace: Duration) {
        self.replies.shutdown(grace).await;
    }

    // ---- collections --------------------------------------------------------------------

    /// Collects a book (looked up first; unknown `404`); adding twice is fine.
    pub async fn collect(&self, user_id: i64, isbn: &Isbn) -> Result<CollectionItem> {
        let book = self.books.get(isbn).await?;
        let created_at = self
            .store
            .collect(user_id, isbn.as_str(), Timestamp::now())
            .await?;
        Ok(CollectionItem {
            isbn: book.isbn.clone(),
            book,
            created_at,
        })
    }

    /// The user's collection, newest first.
    pub async fn collection(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<CollectionItem>)> {
        let (count, items) = self.store.collection(user_id, limit, offset).await?;
        let items = items
            .into_iter()
            .map(|(book, created_at)| CollectionItem {
                isbn: book.isbn.clone(),
                book: self.books.present(book),
                created_at,
            })
            .collect();
        Ok((count, items))
    }

    /// Removes a book from the collection (`404` if it was not there).
    pub async fn uncollect(&self, user_id: i64, isbn: &Isbn) -> Result<()> {
        if !self.store.uncollect(user_id, isbn.as_str()).await? {
            return Err(Error::not_found("收藏", "Collection item"));
        }
        Ok(())
    }
}

/// A title: trimmed, 1–100 characters; `None` when not given.
fn clean_title(title: Option<&str>) -> Result<Option<String>> {
    match title.map(str::trim) {
        None => Ok(None),
        Some(t) if (1..=100).contains(&t.chars().count()) && !t.chars().any(char::is_control) => {
            Ok(Some(t.to_owned()))
        }
        Some(_) => Err(Error::invalid(
            "title",
            "标题须为 1–100 个字符",
            "title must be 1–100 characters",
        )),
    }
}
