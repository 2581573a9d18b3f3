//! The generation task: streams the model into a [`Reply`], checkpoints the text and
//! renews the lease, and makes the final save a step of the reply — the final chunk goes
//! out only once the reply is stored. Whatever happens inside (a panic in embedder code
//! included), the claim is released, the reply ends and every listener wakes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::buffer::{Reply, FAILED_REPLY};
use super::event::{floor_char_boundary, ReplyEvent};
use super::registry::Replies;
use crate::chat::grounding::citations_in;
use crate::chat::tokens::{estimate_tokens, Calibration};
use crate::chat::{FinishReason, MessageStatus, TokenUsage};
use crate::domain::{Source, UserId};
use crate::llm::{ModelEvent, ModelStream};
use crate::store::{FinalReply, Store};
use crate::timestamp::Timestamp;

/// How often a running reply's text is stored and its lease renewed.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// What the error event says when a finished reply could not be stored.
const NOT_STORED: &str = "回复未能保存（数据库暂时不可用），请稍后查看或重试 / \
     The reply could not be stored (the database is unavailable); check again later";

/// Hears about every finished generation (metrics).
pub type GenerationObserver = Arc<dyn Fn(&GenerationReport) + Send + Sync>;

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

/// What a generation task needs besides its reply and stream.
pub(crate) struct Generation {
    /// Where the reply is stored.
    pub(crate) store: Arc<dyn Store>,
    /// The replies of this process (the task reports its end there).
    pub(crate) replies: Replies,
    /// This process's owner id on its claims.
    pub(crate) owner: Arc<str>,
    /// The user the reply is for (usage).
    pub(crate) user_id: UserId,
    /// How long a claim lasts unless renewed.
    pub(crate) lease: Duration,
    /// How long the final save is retried.
    pub(crate) save_timeout: Duration,
    /// Estimated prompt tokens (used when the upstream reports no usage).
    pub(crate) prompt_estimate: i64,
    /// Learns from the model's own prompt count how far off the estimate was.
    pub(crate) calibration: Arc<Calibration>,
    /// Largest reply in bytes; reaching it ends the reply as `partial` (`length`).
    pub(crate) max_reply_bytes: usize,
    /// Called with each finished reply's report.
    pub(crate) observer: Option<GenerationObserver>,
    /// The passages of the book's text the model was given, numbered (empty: none).
    pub(crate) sources: Arc<[Source]>,
    /// Counts this generation against the process's cap until the task ends.
    pub(crate) _permit: tokio::sync::OwnedSemaphorePermit,
    /// Counts this generation against its user's cap until the task ends.
    pub(crate) _slot: crate::chat::reply_slots::ReplySlot,
}

/// How the model part of a generation ended.
struct Outcome {
    reason: FinishReason,
    /// The status to store (the reason's own, but `partial` for a reply cut at the
    /// byte cap).
    status: MessageStatus,
    usage: Option<TokenUsage>,
    first_token: Option<Duration>,
}

impl Generation {
    /// Starts the task for `reply` (already recorded as running).
    pub(crate) fn spawn(self, reply: Arc<Reply>, stream: ModelStream) {
        self.replies.started(reply.clone());
        tokio::spawn(async move {
            let replies = self.replies.clone();
            let run = AssertUnwindSafe(self.run(&reply, stream))
                .catch_unwind()
                .await;
            let status = match run {
                Ok(status) => status,
                Err(_) => {
                    tracing::error!(
                        conversation_id = %reply.conversation_id,
                        message_id = %reply.message_id,
                        "a generation task panicked; its reply ends as failed"
                    );
                    if !reply.has_ending() {
                        reply.push(ReplyEvent::Error {
                            code: "SERVER_ERROR",
                            message: FAILED_REPLY.into(),
                        });
                    }
                    MessageStatus::Failed
                }
            };
            // Free the conversation here before listeners learn the reply ended, so a
            // client that asks again right after `[DONE]` finds the claim gone.
            replies.ended(&reply);
            reply.finish(status);
        });
    }

    /// The whole generation; returns the status the reply ends with.
    async fn run(self, reply: &Arc<Reply>, stream: ModelStream) -> MessageStatus {
        let store = self.store.clone();
        let streamed = AssertUnwindSafe(self.stream_model(reply, stream))
            .catch_unwind()
            .await;
        let outcome = streamed.unwrap_or_else(|_| {
            tracing::error!(
                conversation_id = %reply.conversation_id,
                "the model stream panicked; storing the reply as failed"
            );
            Outcome {
                reason: FinishReason::Error,
                status: MessageStatus::Failed,
                usage: None,
                first_token: None,
            }
        });
        if let Some(reported) = outcome.usage {
            self.calibration
                .observe(self.prompt_estimate, reported.prompt_tokens);
        }
        let (reasoning, content) = reply.texts();
        let reasoning_tokens = estimate_tokens(&reasoning);
        let usage = outcome.usage.unwrap_or_else(|| {
            TokenUsage::new(
                self.prompt_estimate,
                estimate_tokens(&content) + reasoning_tokens,
            )
        });
        let status = outcome.status;
        let citations = citations_in(&content, self.sources.len());
        let stored = save_with_retry(
            store.as_ref(),
            FinalReply {
                reply_id: reply.message_id,
                user_id: self.user_id,
                content: &content,
                reasoning: (!reasoning.is_empty()).then_some(reasoning.as_str()),
                finish_reason: outcome.reason,
                status,
                usage,
                sources: &self.sources,
                citations: &citations,
            },
            self.save_timeout,
        )
        .await;
        let status = if stored {
            reply.push(ReplyEvent::Finish {
                reason: outcome.reason,
                status,
                usage,
                citations: (!self.sources.is_empty()).then(|| citations.into()),
            });
            if status == MessageStatus::Failed {
                reply.push(ReplyEvent::Error {
                    code: "MODEL_ERROR",
                    message: FAILED_REPLY.into(),
                });
            }
            status
        } else {
            reply.push(ReplyEvent::Error {
                code: "SERVER_ERROR",
                message: NOT_STORED.into(),
            });
            // Its lease runs out; any instance's sweep then stores it as interrupted.
            MessageStatus::Partial
        };
        if let Some(observer) = &self.observer {
            let report = GenerationReport {
                first_token: outcome.first_token,
                status,
                usage,
                reasoning_tokens,
            };
            // Embedder code: a panic there must not change how the reply ended.
            if std::panic::catch_unwind(AssertUnwindSafe(|| observer(&report))).is_err() {
                tracing::error!("the generation observer panicked");
            }
        }
        status
    }

    /// Reads the model into the reply until it ends, fails or is cancelled, storing the
    /// text and renewing the lease every [`CHECKPOINT_EVERY`].
    async fn stream_model(&self, reply: &Arc<Reply>, mut stream: ModelStream) -> Outcome {
        let started = Instant::now();
        let mut first_token = None;
        let mut cancel = reply.cancelled();
        let (mut usage, mut model_reason) = (None, None);
        let mut checkpoint = tokio::time::interval(CHECKPOINT_EVERY);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoint.reset();
        let mut changed = false;
        let mut room = self.max_reply_bytes;
        reply.push(ReplyEvent::Start);
        if !self.sources.is_empty() {
            reply.push(ReplyEvent::Sources(self.sources.clone()));
        }
        let reason = loop {
            tokio::select! {
                biased;
                asked = wait_cancelled(&mut cancel) => break asked,
                _ = checkpoint.tick() => {
                    self.checkpoint(reply, changed).await;
                    changed = false;
                }
                event = stream.next() => match event {
                    None => break model_reason.unwrap_or(FinishReason::Stop),
                    Some(Ok(event @ (ModelEvent::Content(_) | ModelEvent::Reasoning(_)))) if event_len(&event) >= room => {
                        reply.push(cut_to(event, room));
                        tracing::warn!(conversation_id = %reply.conversation_id, max_bytes = self.max_reply_bytes, "a reply reached the size cap; ending it");
                        break CUT_AT_CAP;
                    }
                    Some(Ok(ModelEvent::Content(text))) => {
                        first_token.get_or_insert_with(|| started.elapsed());
                        room -= text.len();
                        reply.push(ReplyEvent::Content(text.into()));
                        changed = true;
                    }
                    Some(Ok(ModelEvent::Reasoning(text))) => {
                        first_token.get_or_insert_with(|| started.elapsed());
                        room -= text.len();
                        reply.push(ReplyEvent::Reasoning(text.into()));
                        changed = true;
                    }
                    Some(Ok(ModelEvent::Usage(u))) => usage = Some(u),
                    // A conversation passes no tools: a model that claims a call ended
                    // its answer.
                    Some(Ok(ModelEvent::Finish(FinishReason::ToolCalls))) => model_reason = Some(FinishReason::Stop),
                    Some(Ok(ModelEvent::Finish(r))) => model_reason = Some(r),
                    Some(Ok(ModelEvent::ToolCall(_))) => {}
                    Some(Err(err)) => {
                        tracing::warn!(conversation_id = %reply.conversation_id, error = %err, "the model failed mid-reply");
                        break FinishReason::Error;
                    }
                },
            }
        };
        let status = if reason == CUT_AT_CAP {
            MessageStatus::Partial
        } else {
            reason.status()
        };
        Outcome {
            reason,
            status,
            usage,
            first_token,
        }
    }

    /// Renews the lease, with the text so far when it changed. Failures are logged: the
    /// reply goes on in memory and the final save retries.
    async fn checkpoint(&self, reply: &Reply, with_text: bool) {
        let texts = with_text.then(|| reply.texts());
        let text = texts
            .as_ref()
            .map(|(reasoning, content)| (content.as_str(), non_empty(reasoning)));
        let lease_until = lease_end(self.lease);
        match self
            .store
            .checkpoint_reply(reply.message_id, &self.owner, text, lease_until)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                conversation_id = %reply.conversation_id,
                "this reply's claim was settled by another instance (its lease ran out); \
                 the final save still stores it"
            ),
            Err(err) => tracing::warn!(error = %err, "reply checkpoint failed"),
        }
    }
}

/// Waits until the reply is asked to end early; the reason to store.
async fn wait_cancelled(cancel: &mut watch::Receiver<Option<FinishReason>>) -> FinishReason {
    let asked = cancel.wait_for(Option::is_some).await.ok().and_then(|r| *r);
    match asked {
        Some(reason) => reason,
        // The reply is gone: nobody can ask any more; never resolve.
        None => std::future::pending().await,
    }
}

/// The reason a reply cut at the byte cap ends with (stored as `partial`).
const CUT_AT_CAP: FinishReason = FinishReason::Length;

/// The text length of a content or reasoning event.
fn event_len(event: &ModelEvent) -> usize {
    match event {
        ModelEvent::Content(text) | ModelEvent::Reasoning(text) => text.len(),
        _ => 0,
    }
}

/// A content or reasoning event cut to at most `room` bytes, as a reply event.
fn cut_to(event: ModelEvent, room: usize) -> ReplyEvent {
    match event {
        ModelEvent::Reasoning(text) => {
            ReplyEvent::Reasoning(text[..floor_char_boundary(&text, room)].into())
        }
        ModelEvent::Content(text) => {
            ReplyEvent::Content(text[..floor_char_boundary(&text, room)].into())
        }
        _ => ReplyEvent::Content("".into()),
    }
}

/// When a lease taken now ends.
pub(crate) fn lease_end(lease: Duration) -> Timestamp {
    Timestamp::from_millis(
        Timestamp::now()
            .millis()
            .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)),
    )
}

/// Stores the final reply, retrying with backoff while the database is away, for up to
/// `timeout`. `false` if it could not be stored.
async fn save_with_retry(store: &dyn Store, reply: FinalReply<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match store.finish_reply(reply, Timestamp::now()).await {
            Ok(()) => {
                if attempts > 1 {
                    tracing::info!(
                        message_id = %reply.reply_id,
                        attempts,
                        "reply stored after retrying"
                    );
                }
                return true;
            }
            Err(err) if Instant::now() + pause < deadline => {
                tracing::warn!(message_id = %reply.reply_id, attempts, error = %err, "storing the reply failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(err) => {
                tracing::error!(message_id = %reply.reply_id, attempts, error = %err, "storing the reply failed; giving up");
                return false;
            }
        }
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}
