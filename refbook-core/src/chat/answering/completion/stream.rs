//! The stream a completion hands out: the model's events with the reply's byte cap,
//! usage always reported once at the end and recorded against the user's quota however
//! the stream ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use crate::chat::reply::event::floor_char_boundary;
use crate::chat::reply_slots::ReplySlot;
use crate::chat::tokens::{estimate_tokens, Calibration};
use crate::domain::{FinishReason, TokenUsage, UserId};
use crate::error::Error;
use crate::llm::{ModelEvent, ModelStream, ToolCallDelta};
use crate::store::Store;
use crate::timestamp::Timestamp;

/// What a completion records when it ends, however it ends (finished, failed, or
/// dropped because the client went away): its tokens against the user's quota.
pub(super) struct Accounting {
    store: Arc<dyn Store>,
    user_id: UserId,
    prompt_estimate: i64,
    calibration: Arc<Calibration>,
    completion_text_tokens: i64,
    reported: Option<TokenUsage>,
    /// Set once the usage was recorded (then dropping records nothing more).
    recorded: bool,
    /// The share of the tokens counted against the quota: 1 in `cost_divisor` (rounded
    /// up; a client's task request counts a quarter).
    cost_divisor: i64,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _slot: ReplySlot,
}

impl Accounting {
    fn usage(&self) -> TokenUsage {
        self.reported
            .unwrap_or_else(|| TokenUsage::new(self.prompt_estimate, self.completion_text_tokens))
    }
}

/// Adds a completion's tokens to the user's count for today.
async fn add_usage(store: Arc<dyn Store>, user_id: UserId, usage: TokenUsage) {
    let day = Timestamp::now().utc_day();
    let added = store
        .add_usage(user_id, &day, usage.prompt_tokens, usage.completion_tokens)
        .await;
    if let Err(err) = added {
        tracing::error!(user_id = %user_id, error = %err, "recording a completion's usage failed");
    }
}

impl Accounting {
    /// Takes the usage to record against the quota, once (and teaches the calibration
    /// the model's count).
    fn take_usage(&mut self) -> Option<TokenUsage> {
        if std::mem::replace(&mut self.recorded, true) {
            return None;
        }
        if let Some(reported) = self.reported {
            self.calibration
                .observe(self.prompt_estimate, reported.prompt_tokens);
        }
        let usage = self.usage();
        let share = |tokens: i64| (tokens + self.cost_divisor - 1) / self.cost_divisor;
        Some(TokenUsage::new(
            share(usage.prompt_tokens),
            share(usage.completion_tokens),
        ))
    }

    /// Counts 1 in `divisor` of the tokens against the quota (rounded up).
    pub(super) fn with_cost_divisor(mut self, divisor: i64) -> Self {
        self.cost_divisor = divisor.max(1);
        self
    }
}

impl Drop for Accounting {
    /// A completion dropped before its usage was recorded (the client went away, or
    /// the stream failed): recorded in the background.
    fn drop(&mut self) {
        let Some(usage) = self.take_usage() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                user_id = %self.user_id,
                "no runtime to record a completion's usage"
            );
            return;
        };
        runtime.spawn(add_usage(self.store.clone(), self.user_id, usage));
    }
}

/// What a completion's stream hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionEvent {
    /// More answer text.
    Content(String),
    /// More reasoning text.
    Reasoning(String),
    /// A piece of a tool call (only where the client's tools were passed through).
    ToolCall(ToolCallDelta),
    /// Why the answer ended (`Stop`, `Length` — the token or byte cap —,
    /// `ContentFilter`, or `ToolCalls`).
    Finish(FinishReason),
    /// The tokens used, exactly once, last: the model's count, or an estimate.
    Usage(TokenUsage),
}

impl From<ModelEvent> for CompletionEvent {
    fn from(event: ModelEvent) -> Self {
        match event {
            ModelEvent::Content(text) => Self::Content(text),
            ModelEvent::Reasoning(text) => Self::Reasoning(text),
            ModelEvent::ToolCall(call) => Self::ToolCall(call),
            ModelEvent::Finish(reason) => Self::Finish(reason),
            ModelEvent::Usage(usage) => Self::Usage(usage),
        }
    }
}

/// The model's stream with the reply's byte cap, usage always reported at the end, and
/// the usage recorded when it ends or is dropped.
pub struct CompletionStream {
    inner: ModelStream,
    accounting: Accounting,
    bytes: usize,
    max_bytes: usize,
    /// Events to hand out before reading on (the cut's finish, the closing usage).
    queued: std::collections::VecDeque<CompletionEvent>,
    ended: bool,
}

impl Accounting {
    /// The accounting of one completion by `user_id` whose prompt is estimated at
    /// `prompt_estimate` tokens; it holds the generation `permit` and the user's `slot`
    /// until it ends.
    pub(super) fn new(
        store: Arc<dyn Store>,
        user_id: UserId,
        prompt_estimate: i64,
        calibration: Arc<Calibration>,
        permit: tokio::sync::OwnedSemaphorePermit,
        slot: ReplySlot,
    ) -> Self {
        Self {
            store,
            user_id,
            prompt_estimate,
            calibration,
            completion_text_tokens: 0,
            reported: None,
            cost_divisor: 1,
            recorded: false,
            _permit: permit,
            _slot: slot,
        }
    }
}

impl CompletionStream {
    /// The model's stream `inner`, cut at `max_bytes` of reply, accounted by `accounting`.
    pub(super) fn new(inner: ModelStream, accounting: Accounting, max_bytes: usize) -> Self {
        Self {
            inner,
            accounting,
            bytes: 0,
            max_bytes,
            queued: std::collections::VecDeque::new(),
            ended: false,
        }
    }

    /// Records the completion's usage against the user's quota now (once), so that the
    /// answer is only finished when its tokens count. A stream dropped before this
    /// records them in the background.
    pub async fn record_usage(&mut self) {
        if let Some(usage) = self.accounting.take_usage() {
            add_usage(
                self.accounting.store.clone(),
                self.accounting.user_id,
                usage,
            )
            .await;
        }
    }

    /// Ends the reply at the byte cap: finish reason `length`, then the usage.
    fn end_at_cap(&mut self) {
        self.queued
            .push_back(CompletionEvent::Finish(FinishReason::Length));
        self.queued
            .push_back(CompletionEvent::Usage(self.accounting.usage()));
        self.ended = true;
    }

    /// A text event within the byte cap; at the cap the rest is cut and the reply ends
    /// with finish reason `length` (a tool call's piece is not cut: past the cap it is
    /// left out).
    fn capped(&mut self, event: CompletionEvent) -> Option<CompletionEvent> {
        let room = self.max_bytes.saturating_sub(self.bytes);
        let (text, reasoning) = match &event {
            CompletionEvent::Content(text) => (text, false),
            CompletionEvent::Reasoning(text) => (text, true),
            CompletionEvent::ToolCall(call) => {
                let size = call.arguments.len()
                    + call.name.as_ref().map_or(0, String::len)
                    + call.id.as_ref().map_or(0, String::len);
                if size > room {
                    self.end_at_cap();
                    return None;
                }
                self.bytes += size;
                self.accounting.completion_text_tokens += estimate_tokens(&call.arguments);
                return Some(event);
            }
            _ => return Some(event),
        };
        let keep = if text.len() <= room {
            text.len()
        } else {
            floor_char_boundary(text, room)
        };
        self.bytes += keep;
        self.accounting.completion_text_tokens += estimate_tokens(&text[..keep]);
        if keep == text.len() {
            return Some(event);
        }
        self.end_at_cap();
        let piece = text[..keep].to_owned();
        let piece = if reasoning {
            CompletionEvent::Reasoning(piece)
        } else {
            CompletionEvent::Content(piece)
        };
        (keep > 0).then_some(piece)
    }
}

impl Stream for CompletionStream {
    type Item = std::result::Result<CompletionEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match futures::ready!(self.inner.poll_next_unpin(cx)) {
                None => {
                    self.ended = true;
                    if self.accounting.reported.is_none() {
                        let usage = self.accounting.usage();
                        return Poll::Ready(Some(Ok(CompletionEvent::Usage(usage))));
                    }
                }
                Some(Err(err)) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(err.into())));
                }
                Some(Ok(ModelEvent::Usage(usage))) => {
                    self.accounting.reported = Some(usage);
                    return Poll::Ready(Some(Ok(CompletionEvent::Usage(usage))));
                }
                Some(Ok(event)) => {
                    if let Some(event) = self.capped(event.into()) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
            }
        }
    }
}
