//! [`Reply`]: one reply's shared event log, which any number of [`ReplyListener`]s read by
//! position without copying it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use super::event::{Positioned, ReplyEvent, ReplyLog};
use crate::chat::{FinishReason, Message, MessageStatus};
use crate::domain::{ConversationId, MessageId};

/// The most events one [`ReplyListener::next`] hands out: a listener that never reads
/// holds at most this many (shared) events.
const BATCH: usize = 256;

/// What a failed reply's error event says (live or rebuilt).
pub(crate) const FAILED_REPLY: &str =
    "AI 服务中断，回复未完成 / The AI service failed before the reply finished";

#[derive(Debug)]
struct ReplyState {
    log: ReplyLog,
    status: MessageStatus,
    finished_at: Option<Instant>,
}

/// A reply being generated (or recently finished, or rebuilt from the database).
#[derive(Debug)]
pub struct Reply {
    pub(crate) conversation_id: ConversationId,
    pub(crate) message_id: MessageId,
    pub(crate) model: String,
    pub(crate) created: i64,
    state: Mutex<ReplyState>,
    /// The last position, and whether the reply ended: listeners wait on changes.
    progress: watch::Sender<(usize, bool)>,
    /// Set when someone asks the generation to end early, with the reason to store.
    cancel: watch::Sender<Option<FinishReason>>,
}

impl Reply {
    /// Its conversation.
    pub fn conversation_id(&self) -> ConversationId {
        self.conversation_id
    }

    /// The assistant message it fills.
    pub fn message_id(&self) -> MessageId {
        self.message_id
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Unix seconds when its message was stored (the chunks' `created`: the same on every
    /// instance and after a rebuild).
    pub fn created(&self) -> i64 {
        self.created
    }

    /// An empty reply for a stored assistant message (tests; the engine builds replies
    /// from their stored message with [`of_message`](Self::of_message)).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn new(
        conversation_id: ConversationId,
        message_id: MessageId,
        model: String,
    ) -> Arc<Self> {
        Self::created_at(
            conversation_id,
            message_id,
            model,
            crate::timestamp::Timestamp::now().unix_seconds(),
        )
    }

    fn created_at(
        conversation_id: ConversationId,
        message_id: MessageId,
        model: String,
        created: i64,
    ) -> Arc<Self> {
        Arc::new(Self {
            conversation_id,
            message_id,
            model,
            created,
            state: Mutex::new(ReplyState {
                log: ReplyLog::default(),
                status: MessageStatus::Generating,
                finished_at: None,
            }),
            progress: watch::channel((0, false)).0,
            cancel: watch::channel(None).0,
        })
    }

    /// An empty reply for the stored assistant message `message`.
    pub(crate) fn of_message(message: &Message, model: String) -> Arc<Self> {
        Self::created_at(
            message.conversation_id,
            message.id,
            model,
            message.created_at.unix_seconds(),
        )
    }

    /// A reply rebuilt from its stored message: the start, the stored reasoning and
    /// answer, and — when the message is no longer generating — its ending. Positions
    /// equal the live ones (see [`event`](super::event)).
    pub(crate) fn from_stored(message: &Message, model: String) -> Arc<Self> {
        let reply = Self::of_message(message, model);
        reply.push(ReplyEvent::Start);
        if !message.sources.is_empty() {
            reply.push(ReplyEvent::Sources(message.sources.clone().into()));
        }
        reply.push_stored_text(message, "", "");
        if message.status != MessageStatus::Generating {
            reply.push_stored_ending(message);
            reply.finish(message.status);
        }
        reply
    }

    /// Pushes the stored text beyond what was already pushed (`seen_reasoning`,
    /// `seen_content`): a reply that follows another instance's checkpoints.
    pub(crate) fn push_stored_text(
        &self,
        message: &Message,
        seen_reasoning: &str,
        seen_content: &str,
    ) {
        let reasoning = message.reasoning.as_deref().unwrap_or("");
        if let Some(more) = reasoning.strip_prefix(seen_reasoning) {
            self.push(ReplyEvent::Reasoning(more.into()));
        }
        if let Some(more) = message.content.strip_prefix(seen_content) {
            self.push(ReplyEvent::Content(more.into()));
        }
    }

    /// Pushes the ending of a stored, finished message.
    pub(crate) fn push_stored_ending(&self, message: &Message) {
        let reason = message.finish_reason.unwrap_or(match message.status {
            MessageStatus::Failed => FinishReason::Error,
            MessageStatus::Partial | MessageStatus::Generating => FinishReason::Interrupted,
            MessageStatus::Complete => FinishReason::Stop,
        });
        self.push(ReplyEvent::Finish {
            reason,
            status: message.status,
            usage: message.usage.unwrap_or_default(),
            citations: (!message.sources.is_empty()).then(|| message.citations.clone().into()),
        });
        if message.status == MessageStatus::Failed {
            self.push(ReplyEvent::Error {
                code: "MODEL_ERROR",
                message: FAILED_REPLY.into(),
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, ReplyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event and wakes the listeners.
    pub(crate) fn push(&self, event: ReplyEvent) {
        let last = {
            let mut state = self.lock();
            state.log.push(event);
            state.log.last_position()
        };
        self.progress.send_modify(|(at, _)| *at = last);
    }

    /// Marks the reply ended with `status` and wakes the listeners.
    pub(crate) fn finish(&self, status: MessageStatus) {
        let last = {
            let mut state = self.lock();
            state.status = status;
            state.finished_at = Some(Instant::now());
            state.log.last_position()
        };
        self.progress.send_replace((last, true));
    }

    /// The reasoning and answer so far.
    pub(crate) fn texts(&self) -> (String, String) {
        self.lock().log.texts()
    }

    /// Whether the final chunk or an error event was logged.
    pub(crate) fn has_ending(&self) -> bool {
        self.lock().log.has_ending()
    }

    /// The position of the last event (0 before the start).
    pub(crate) fn last_position(&self) -> usize {
        self.lock().log.last_position()
    }

    /// Bytes of text the reply holds.
    pub(crate) fn text_len(&self) -> usize {
        self.lock().log.text_len()
    }

    /// When the reply ended, if it did.
    pub(crate) fn finished_at(&self) -> Option<Instant> {
        self.lock().finished_at
    }

    /// The passages of the book's text a grounded reply was given (`None`: none), and the
    /// ones its answer cites once it ended.
    pub fn grounding(&self) -> super::event::Grounding {
        self.lock().log.grounding()
    }

    /// Events after position `cursor` (at most a batch), and whether the reply ended.
    pub fn events_after(&self, cursor: usize) -> (Vec<Positioned>, bool) {
        let state = self.lock();
        (state.log.after(cursor, BATCH), state.finished_at.is_some())
    }

    /// The current status.
    pub fn status(&self) -> MessageStatus {
        self.lock().status
    }

    /// Whether the reply has ended.
    pub fn is_finished(&self) -> bool {
        self.lock().finished_at.is_some()
    }

    /// A listener reading the events after `position`, waiting for more until the end.
    pub fn listen(self: &Arc<Self>, position: usize) -> ReplyListener {
        ReplyListener {
            reply: self.clone(),
            position,
            progress: self.progress.subscribe(),
        }
    }

    /// Asks the generation to stop; what it produced is stored as `partial` with finish
    /// reason `cancelled`.
    pub fn stop(&self) {
        self.cancel(FinishReason::Cancelled);
    }

    /// Asks the generation to end early; it stores what it has with `reason`.
    pub(crate) fn cancel(&self, reason: FinishReason) {
        self.cancel.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(reason);
            }
            first
        });
    }

    /// The receiver a generation watches for [`cancel`](Self::cancel).
    pub(crate) fn cancelled(&self) -> watch::Receiver<Option<FinishReason>> {
        self.cancel.subscribe()
    }

    /// Waits until the reply has ended.
    pub async fn finished(&self) {
        let mut progress = self.progress.subscribe();
        let _ = progress.wait_for(|(_, done)| *done).await;
    }
}

/// Reads a reply's events from a position; many may read one reply, and each costs only
/// its position (the events are shared).
#[derive(Debug)]
pub struct ReplyListener {
    reply: Arc<Reply>,
    position: usize,
    progress: watch::Receiver<(usize, bool)>,
}

impl ReplyListener {
    /// The next events with their positions (all that are ready, up to a batch), waiting
    /// for them; `None` once the reply ended and everything was read.
    pub async fn next(&mut self) -> Option<Vec<Positioned>> {
        loop {
            self.progress.borrow_and_update();
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

    /// The listener as a [`Stream`](futures::Stream) of event batches (each as
    /// [`next`](Self::next) gives them), ending after the reply's last event.
    pub fn into_stream(self) -> impl futures::Stream<Item = Vec<Positioned>> + Send {
        futures::stream::unfold(self, |mut listener| async move {
            let batch = listener.next().await?;
            Some((batch, listener))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::TokenUsage;
    use crate::timestamp::Timestamp;

    #[tokio::test]
    async fn listeners_wait_for_events_and_end_after_the_last() {
        let reply = Reply::new(ConversationId::new(1), MessageId::new(2), "m".into());
        let mut early = reply.listen(0);
        reply.push(ReplyEvent::Start);
        assert_eq!(early.next().await.unwrap(), [(1, ReplyEvent::Start)]);
        let waiting = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(batch) = early.next().await {
                all.extend(batch);
            }
            all
        });
        reply.push(ReplyEvent::Content("答".into()));
        reply.push(ReplyEvent::Finish {
            reason: FinishReason::Stop,
            status: MessageStatus::Complete,
            usage: TokenUsage::default(),
            citations: None,
        });
        reply.finish(MessageStatus::Complete);
        let rest = waiting.await.unwrap();
        assert_eq!(rest.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [4, 5]);
        let mut late = reply.listen(4);
        assert_eq!(late.next().await.unwrap().len(), 1);
        assert!(late.next().await.is_none());
        // As a stream: every event after the position, then the end.
        let all: Vec<Positioned> = futures::StreamExt::concat(reply.listen(0).into_stream()).await;
        assert_eq!(all.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [1, 4, 5]);
    }

    #[test]
    fn a_stored_reply_rebuilds_with_its_ending() {
        let message = Message {
            id: MessageId::new(9),
            conversation_id: ConversationId::new(3),
            role: crate::chat::Role::Assistant,
            content: "答案".into(),
            reasoning: Some("想".into()),
            status: MessageStatus::Partial,
            finish_reason: Some(FinishReason::Cancelled),
            usage: None,
            sources: Vec::new(),
            citations: Vec::new(),
            created_at: Timestamp::now(),
        };
        let reply = Reply::from_stored(&message, "m".into());
        let (events, done) = reply.events_after(0);
        assert!(done);
        assert_eq!(events.len(), 4);
        assert_eq!(
            events[3],
            (
                11,
                ReplyEvent::Finish {
                    reason: FinishReason::Cancelled,
                    status: MessageStatus::Partial,
                    usage: TokenUsage::default(),
                    citations: None,
                }
            )
        );
        reply.cancel(FinishReason::Cancelled);
        reply.cancel(FinishReason::Interrupted);
        assert_eq!(*reply.cancelled().borrow(), Some(FinishReason::Cancelled));
    }
}
