//! Generation owned by the server: each reply is a task writing events into a buffer that
//! any number of listeners (an SSE response, a poller, the CLI) read from a cursor. A
//! listener leaving changes nothing; `stop` cancels the task; the reply is stored however
//! the task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use super::tokens::estimate_tokens;
use super::{MessageStatus, TokenUsage};
use crate::error::{Error, ErrorKind};
use crate::llm::{ModelEvent, ModelStream};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// What a reply that failed upstream says in its error event (live or rebuilt).
const FAILED_REPLY: &str =
    "AI 服务中断，回复未完成 / The AI service failed before the reply finished";

/// How long a finished reply stays attachable with its original event positions.
const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// How often a running reply's text is written to the database (crash safety).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// One event of a reply; its position (1-based) is its SSE `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyEvent {
    /// The reply began (`delta: {"role": "assistant", "content": ""}`).
    Start,
    /// Reasoning text.
    Reasoning(String),
    /// Answer text.
    Content(String),
    /// The reply ended (`finish_reason`, with usage).
    Finish {
        /// `stop`, `length`, …
        reason: String,
        /// Token counts.
        usage: TokenUsage,
    },
    /// The model failed after the reply began.
    Error {
        /// A message for people.
        message: String,
    },
}

#[derive(Debug)]
struct ReplyState {
    events: Vec<ReplyEvent>,
    status: MessageStatus,
    finished_at: Option<Instant>,
}

/// A reply being generated (or recently finished).
#[derive(Debug)]
pub struct Reply {
    /// Its conversation.
    pub conversation_id: i64,
    /// The assistant message it fills.
    pub message_id: i64,
    /// The user it is for.
    pub user_id: i64,
    /// The model's name.
    pub model: String,
    /// Unix seconds at start (the chunks' `created`).
    pub created: i64,
    state: Mutex<ReplyState>,
    /// (events so far, finished): listeners wait on changes.
    progress: watch::Sender<(usize, bool)>,
    cancel: watch::Sender<bool>,
}

impl Reply {
    /// A new reply buffer for a stored assistant message.
    pub fn new(conversation_id: i64, message_id: i64, user_id: i64, model: String) -> Arc<Self> {
        Arc::new(Self {
            conversation_id,
            message_id,
            user_id,
            model,
            created: Timestamp::now().unix_seconds(),
            state: Mutex::new(ReplyState {
                events: Vec::new(),
                status: MessageStatus::Generating,
                finished_at: None,
            }),
            progress: watch::channel((0, false)).0,
            cancel: watch::channel(false).0,
        })
    }

    /// A finished reply rebuilt from its stored message (after the buffer was dropped):
    /// start, all reasoning, all content, then the end.
    pub fn replay(message: &super::Message, model: String) -> Arc<Self> {
        let reply = Self::new(message.conversation_id, message.id, 0, model);
        reply.push(ReplyEvent::Start);
        if let Some(reasoning) = message.reasoning.clone().filter(|r| !r.is_empty()) {
            reply.push(ReplyEvent::Reasoning(reasoning));
        }
        if !message.content.is_empty() {
            reply.push(ReplyEvent::Content(message.content.clone()));
        }
        match message.status {
            MessageStatus::Failed => reply.push(ReplyEvent::Error {
                message: FAILED_REPLY.to_owned(),
            }),
            _ => reply.push(ReplyEvent::Finish {
                reason: "stop".to_owned(),
                usage: message.usage.unwrap_or_default(),
            }),
        }
        let status = if message.status == MessageStatus::Generating {
            MessageStatus::Partial
        } else {
            message.status
        };
        reply.finish(status);
        reply
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplyState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, event: ReplyEvent) {
        let len = {
            let mut state = self.lock();
            state.events.push(event);
            state.events.len()
        };
        self.progress.send_replace((len, false));
    }

    fn finish(&self, status: MessageStatus) {
        let len = {
            let mut state = self.lock();
            state.status = status;
            state.finished_at = Some(Instant::now());
            state.events.len()
        };
        self.progress.send_replace((len, true));
    }

    /// Events after position `cursor` with their positions, and whether the reply ended.
    pub fn events_after(&self, cursor: usize) -> (Vec<(usize, ReplyEvent)>, bool) {
        let state = self.lock();
        let events = state
            .events
            .iter()
            .enumerate()
            .skip(cursor)
            .map(|(i, e)| (i + 1, e.clone()))
            .collect();
        (events, state.finished_at.is_some())
    }

    /// The current status.
    pub fn status(&self) -> MessageStatus {
        self.lock().status
    }

    /// Whether the reply has ended.
    pub fn is_finished(&self) -> bool {
        self.lock().finished_at.is_some()
    }

    /// A cursor reading events after `position`, waiting for more until the reply ends.
    pub fn listen(self: &Arc<Self>, position: usize) -> ReplyListener {
        ReplyListener {
            reply: self.clone(),
            position,
            progress: self.progress.subscribe(),
        }
    }

    /// Asks the generation to stop (its partial text is stored).
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// Waits until the reply has ended.
    pub async fn finished(&self) {
        let mut progress = self.progress.subscribe();
        let _ = progress.wait_for(|(_, done)| *done).await;
    }
}

/// Reads a reply's events from a position; many may read one reply.
#[derive(Debug)]
pub struct ReplyListener {
    reply: Arc<Reply>,
    position: usize,
    progress: watch::Receiver<(usize, bool)>,
}

impl ReplyListener {
    /// The next events (with positions), waiting for them; `None` once the reply ended and
    /// everything was read.
    pub async fn next(&mut self) -> Option<Vec<(usize, ReplyEvent)>> {
        loop {
            let (events, done) = self.reply.events_after(self.position);
            if let Some((last, _)) = events.last() {
                self.position = *last;
                return Some(events);
            }
            if done {
                return None;
            }
            if self.progress.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The reply read.
    pub fn reply(&self) -> &Arc<Reply> {
        &self.reply
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// Conversations with a generation starting or running.
    busy: HashMap<i64, Option<Arc<Reply>>>,
    /// Recently finished replies by conversation.
    recent: HashMap<i64, Arc<Reply>>,
    /// Generations per user.
    per_user: HashMap<i64, usize>,
}

/// Every running and recently finished reply.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    registry: Arc<Mutex<Registry>>,
}

/// A claim on a conversation and on one of the user's generation slots; released on drop
/// unless a reply takes it over.
#[derive(Debug)]
pub struct Slot {
    replies: Replies,
    conversation_id: i64,
    user_id: i64,
    active: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.active {
            self.replies
                .release(self.conversation_id, self.user_id, None);
        }
    }
}

impl Replies {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims the conversation for a new generation: `409` if one is running there, `429`
    /// if the user already runs `max_per_user`.
    pub fn claim(
        &self,
        conversation_id: i64,
        user_id: i64,
        max_per_user: usize,
    ) -> Result<Slot, Error> {
        let mut registry = self.lock();
        if registry.busy.contains_key(&conversation_id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                "这个对话正在生成回复，请稍候或先停止",
                "A reply is already being generated in this conversation",
            ));
        }
        let running = registry.per_user.get(&user_id).copied().unwrap_or(0);
        if running >= max_per_user.max(1) {
            return Err(Error::new(
                ErrorKind::RateLimited,
                "同时进行的对话过多，请稍后再试",
                "Too many replies are being generated at once; please wait",
            )
            .with_retry_after(Duration::from_secs(5)));
        }
        registry.busy.insert(conversation_id, None);
        *registry.per_user.entry(user_id).or_insert(0) += 1;
        Ok(Slot {
            replies: self.clone(),
            conversation_id,
            user_id,
            active: false,
        })
    }

    fn release(&self, conversation_id: i64, user_id: i64, finished: Option<Arc<Reply>>) {
        let mut registry = self.lock();
        registry.busy.remove(&conversation_id);
        if let Some(count) = registry.per_user.get_mut(&user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.per_user.remove(&user_id);
            }
        }
        if let Some(reply) = finished {
            let now = Instant::now();
            registry.recent.retain(|_, r| {
                r.lock()
                    .finished_at
                    .is_some_and(|at| now.duration_since(at) < KEEP_FINISHED)
            });
            registry.recent.insert(conversation_id, reply);
        }
    }

    /// The reply running in the conversation, else the one that finished there lately.
    pub fn current(&self, conversation_id: i64) -> Option<Arc<Reply>> {
        let registry = self.lock();
        registry
            .busy
            .get(&conversation_id)
            .cloned()
            .flatten()
            .or_else(|| registry.recent.get(&conversation_id).cloned())
    }

    /// The reply running in the conversation (not a finished one).
    pub fn running(&self, conversation_id: i64) -> Option<Arc<Reply>> {
        self.lock().busy.get(&conversation_id).cloned().flatten()
    }

    /// Forgets a conversation's finished reply (its messages changed).
    pub fn forget(&self, conversation_id: i64) {
        self.lock().recent.remove(&conversation_id);
    }

    /// How many replies are being generated.
    pub fn active_count(&self) -> usize {
        self.lock().busy.values().filter(|r| r.is_some()).count()
    }

    /// Starts the generation task for `reply`, which takes over `slot`.
    pub fn spawn(&self, mut slot: Slot, reply: Arc<Reply>, stream: ModelStream, run: Generation) {
        slot.active = true;
        {
            let mut registry = self.lock();
            registry.recent.remove(&reply.conversation_id);
            registry
                .busy
                .insert(reply.conversation_id, Some(reply.clone()));
        }
        let replies = self.clone();
        tokio::spawn(async move {
            let status = run.drive(&reply, stream).await;
            // Free the conversation before listeners learn the reply ended, so a client
            // that asks again right after `[DONE]` is not refused with a 409.
            replies.release(slot.conversation_id, slot.user_id, Some(reply.clone()));
            reply.finish(status);
        });
    }

    /// At shutdown: lets running replies finish for up to `grace`, then stops the rest
    /// (their partial text is stored) and waits for them to be saved.
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.active_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let running: Vec<Arc<Reply>> = self.lock().busy.values().flatten().cloned().collect();
        for reply in &running {
            reply.cancel();
        }
        for reply in running {
            let _ = tokio::time::timeout(Duration::from_secs(10), reply.finished()).await;
        }
    }
}

/// Hears about every finished generation (metrics).
pub type GenerationObserver = Arc<dyn Fn(&GenerationReport) + Send + Sync>;

/// What a generation task needs besides its reply and stream.
pub struct Generation {
    /// Where the reply is stored.
    pub store: Arc<dyn Store>,
    /// Estimated prompt tokens (used when the upstream reports no usage).
    pub prompt_estimate: i64,
    /// Called with each finished reply's model time-to-first-token and usage (metrics).
    pub observer: Option<GenerationObserver>,
}

/// What a finished generation reports to observers.
#[derive(Debug, Clone)]
pub struct GenerationReport {
    /// Time from start to the first reasoning or content text.
    pub first_token: Option<Duration>,
    /// Final status.
    pub status: MessageStatus,
    /// Usage recorded.
    pub usage: TokenUsage,
    /// Reasoning tokens (estimated).
    pub reasoning_tokens: i64,
}

impl Generation {
    /// Streams the reply into its buffer and stores it; returns its final status (the
    /// caller marks the reply finished).
    async fn drive(self, reply: &Arc<Reply>, mut stream: ModelStream) -> MessageStatus {
        let started = Instant::now();
        let mut first_token = None;
        let mut cancel = reply.cancel.subscribe();
        let (mut content, mut reasoning) = (String::new(), String::new());
        let (mut usage, mut reason) = (None, None);
        let mut checkpoint = Instant::now();
        reply.push(ReplyEvent::Start);
        let status = loop {
            let event = tokio::select! {
                biased;
                _ = cancel.wait_for(|stop| *stop) => break MessageStatus::Partial,
                event = stream.next() => event,
            };
            match event {
                None => break MessageStatus::Complete,
                Some(Ok(ModelEvent::Content(text))) => {
                    first_token.get_or_insert_with(|| started.elapsed());
                    content.push_str(&text);
                    reply.push(ReplyEvent::Content(text));
                }
                Some(Ok(ModelEvent::Reasoning(text))) => {
                    first_token.get_or_insert_with(|| started.elapsed());
                    reasoning.push_str(&text);
                    reply.push(ReplyEvent::Reasoning(text));
                }
                Some(Ok(ModelEvent::Usage(u))) => usage = Some(u),
                Some(Ok(ModelEvent::Finish(r))) => reason = Some(r),
                Some(Err(err)) => {
                    tracing::warn!(conversation_id = reply.conversation_id, error = %err, "model failed mid-reply");
                    break MessageStatus::Failed;
                }
            }
            if checkpoint.elapsed() >= CHECKPOINT_EVERY {
                checkpoint = Instant::now();
                let saved = self
                    .store
                    .update_message(
                        reply.message_id,
                        &content,
                        non_empty(&reasoning),
                        MessageStatus::Generating,
                        None,
                        Timestamp::now(),
                    )
                    .await;
                if let Err(err) = saved {
                    tracing::warn!(error = %err, "reply checkpoint failed");
                }
            }
        };
        let reasoning_tokens = estimate_tokens(&reasoning);
        let usage = usage.unwrap_or_else(|| {
            TokenUsage::new(
                self.prompt_estimate,
                estimate_tokens(&content) + reasoning_tokens,
            )
        });
        let now = Timestamp::now();
        let stored = self
            .store
            .update_message(
                reply.message_id,
                &content,
                non_empty(&reasoning),
                status,
                Some(usage),
                now,
            )
            .await;
        if let Err(err) = stored {
            tracing::error!(conversation_id = reply.conversation_id, error = %err, "storing the reply failed");
        }
        if let Err(err) = self
            .store
            .add_usage(
                reply.user_id,
                &now.utc_day(),
                usage.prompt_tokens,
                usage.completion_tokens,
            )
            .await
        {
            tracing::error!(error = %err, "recording usage failed");
        }
        match status {
            MessageStatus::Failed => reply.push(ReplyEvent::Error {
                message: FAILED_REPLY.to_owned(),
            }),
            _ => reply.push(ReplyEvent::Finish {
                reason: reason.unwrap_or_else(|| "stop".to_owned()),
                usage,
            }),
        }
        if let Some(observer) = &self.observer {
            observer(&GenerationReport {
                first_token,
                status,
                usage,
                reasoning_tokens,
            });
        }
        status
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}
