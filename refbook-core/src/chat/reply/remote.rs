//! Replies across instances (see [`crate::cluster`]). The owner of a running reply appends its events, in
//! batches, to a Redis Stream (`reply:{message_id}`, bounded, expiring after the reply
//! ends) and publishes each batch on the channel of the same name. An instance asked for
//! that reply rebuilds it from the database, reads the stream, then follows the channel;
//! every event carries its position and the previous one, so a reader applies exactly
//! the events that continue what it has — nothing missed, nothing twice. Whatever Redis
//! misses, the database's checkpoints (every 2 s) fill in, with the same positions.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::buffer::Reply;
use super::event::ReplyEvent;
use super::follow::from_database;
use crate::cluster::{channel_name, Cluster, Heard, Listening};
use crate::domain::MessageId;
use crate::domain::{FinishReason, Message, MessageStatus, Source, TokenUsage};
use crate::store::Store;

/// The most batches a reply's stream keeps (approximately; the oldest go first). A
/// reader that finds the start gone continues from the database's checkpoint.
const STREAM_MAX_BATCHES: usize = 4096;
/// How long a reply's stream stays after the reply ended, or after the last batch of a
/// reply whose owner vanished.
const STREAM_TTL_AFTER_END: Duration = Duration::from_secs(600);
const STREAM_TTL_RUNNING: Duration = Duration::from_secs(3600);
/// How long an ended reply's owner keeps trying to publish its last batches while Redis
/// is away (the database has the reply anyway).
const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);

/// One event as published: its position `p`, the position before it `v`, and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireEvent {
    p: usize,
    v: usize,
    #[serde(flatten)]
    event: WireKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum WireKind {
    Start,
    Sources {
        s: Vec<Source>,
    },
    Reasoning {
        t: String,
    },
    Content {
        t: String,
    },
    Finish {
        reason: FinishReason,
        status: MessageStatus,
        usage: TokenUsage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<u32>>,
    },
    Error {
        code: String,
        message: String,
    },
    /// Not an event: the reply ended with this status after position `p`.
    End {
        status: MessageStatus,
    },
}

impl WireKind {
    fn of(event: &ReplyEvent) -> Self {
        match event {
            ReplyEvent::Start => Self::Start,
            ReplyEvent::Sources(sources) => Self::Sources {
                s: sources.to_vec(),
            },
            ReplyEvent::Reasoning(text) => Self::Reasoning {
                t: text.to_string(),
            },
            ReplyEvent::Content(text) => Self::Content {
                t: text.to_string(),
            },
            ReplyEvent::Finish {
                reason,
                status,
                usage,
                citations,
            } => Self::Finish {
                reason: *reason,
                status: *status,
                usage: *usage,
                citations: citations.as_deref().map(<[u32]>::to_vec),
            },
            ReplyEvent::Error { code, message } => Self::Error {
                code: (*code).to_owned(),
                message: message.to_string(),
            },
        }
    }

    fn into_event(self) -> Option<ReplyEvent> {
        Some(match self {
            Self::Start => ReplyEvent::Start,
            Self::Sources { s } => ReplyEvent::Sources(s.into()),
            Self::Reasoning { t } => ReplyEvent::Reasoning(t.into()),
            Self::Content { t } => ReplyEvent::Content(t.into()),
            Self::Finish {
                reason,
                status,
                usage,
                citations,
            } => ReplyEvent::Finish {
                reason,
                status,
                usage,
                citations: citations.map(Into::into),
            },
            Self::Error { code, message } => ReplyEvent::Error {
                code: known_code(&code),
                message: message.into(),
            },
            Self::End { .. } => return None,
        })
    }
}

/// The contract's code for an error event read back (codes are static in events).
fn known_code(code: &str) -> &'static str {
    match code {
        "MODEL_ERROR" => "MODEL_ERROR",
        "NOT_FOUND" => "NOT_FOUND",
        _ => "SERVER_ERROR",
    }
}

// ---- The owner's side ----------------------------------------------------------------

/// Publishes a reply generating here until it ends (a task of its own, so Redis never
/// slows the generation).
pub(crate) fn publish_reply(cluster: &Cluster, reply: &Arc<Reply>) {
    tokio::spawn(publish(cluster.clone(), reply.clone()));
}

async fn publish(cluster: Cluster, reply: Arc<Reply>) {
    let name = channel_name(reply.message_id);
    let (key, channel) = (cluster.key(&name), cluster.key(&name));
    let mut listener = reply.listen(0);
    let mut prev = 0;
    // After a failure Redis may have lost the stream: rewrite it from the start.
    let mut rewrite = false;
    let mut pause = Duration::from_millis(100);
    loop {
        let (batch, ended) = match listener.next().await {
            Some(events) => (
                events
                    .iter()
                    .map(|(at, event)| {
                        let wire = WireEvent {
                            p: *at,
                            v: prev,
                            event: WireKind::of(event),
                        };
                        prev = *at;
                        wire
                    })
                    .collect::<Vec<_>>(),
                false,
            ),
            None => (
                vec![WireEvent {
                    p: prev,
                    v: prev,
                    event: WireKind::End {
                        status: reply.status(),
                    },
                }],
                true,
            ),
        };
        let payload = serde_json::to_string(&batch).unwrap_or_default();
        match send(&cluster, &key, &channel, &payload, rewrite, ended).await {
            Ok(()) => {
                rewrite = false;
                pause = Duration::from_millis(100);
                if ended {
                    return;
                }
            }
            Err(err) => {
                let gave_up = reply
                    .finished_at()
                    .is_some_and(|at| at.elapsed() > PUBLISH_PATIENCE);
                if gave_up {
                    tracing::warn!(error = %err, message_id = %reply.message_id, "Redis: giving up publishing an ended reply (it is stored)");
                    return;
                }
                tracing::warn!(error = %err, message_id = %reply.message_id, "Redis: publishing a reply failed; retrying from its start");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                listener = reply.listen(0);
                prev = 0;
                rewrite = true;
            }
        }
    }
}

async fn send(
    cluster: &Cluster,
    key: &str,
    channel: &str,
    payload: &str,
    rewrite: bool,
    ended: bool,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    if rewrite {
        pipe.cmd("DEL").arg(key).ignore();
    }
    pipe.cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_MAX_BATCHES)
        .arg("*")
        .arg("b")
        .arg(payload)
        .ignore();
    let ttl = if ended {
        STREAM_TTL_AFTER_END
    } else {
        STREAM_TTL_RUNNING
    };
    pipe.cmd("EXPIRE").arg(key).arg(ttl.as_secs()).ignore();
    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
    let mut redis = cluster.redis();
    pipe.query_async::<()>(&mut redis).await
}

// ---- A reader's side -----------------------------------------------------------------

/// What applying published events did.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    /// Everything that continued the reply was applied.
    Continued,
    /// An event does not continue what the reply has: events were missed.
    Gap,
    /// The reply ended.
    Ended,
}

/// Applies `batch` to `reply`: events at or before its last position are skipped, the
/// first new one must continue it.
fn apply(reply: &Reply, batch: Vec<WireEvent>) -> Applied {
    for wire in batch {
        let last = reply.last_position();
        if let WireKind::End { status } = wire.event {
            if wire.p != last {
                return Applied::Gap;
            }
            reply.finish(status);
            return Applied::Ended;
        }
        if wire.p <= last {
            continue;
        }
        if wire.v != last {
            return Applied::Gap;
        }
        if let Some(event) = wire.event.into_event() {
            reply.push(event);
        }
    }
    Applied::Continued
}

fn parse_batch(payload: &[u8]) -> Vec<WireEvent> {
    serde_json::from_slice(payload).unwrap_or_default()
}

/// How long a reader waits for Redis before it answers from the database alone.
const FIRST_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// A reply generating on another instance: rebuilt from its stored message and brought
/// up to date from its stream, then followed live through Redis and, underneath,
/// through the database every `every`, until it ends or nobody holds it.
pub(crate) async fn follow_live(
    cluster: Cluster,
    store: Arc<dyn Store>,
    message: &Message,
    model: String,
    every: Duration,
) -> Arc<Reply> {
    let reply = Reply::from_stored(message, model);
    if message.status != MessageStatus::Generating {
        return reply;
    }
    let weak = Arc::downgrade(&reply);
    let first = tokio::time::timeout(FIRST_READ_TIMEOUT, async {
        let listening = cluster.listen_reply(message.id).await.ok()?;
        let caught_up = catch_up(&cluster, &weak, message.id).await;
        Some((listening, caught_up))
    })
    .await;
    let (listening, stale) = match first {
        Ok(Some((_, CaughtUp::Ended))) => return reply,
        Ok(Some((listening, CaughtUp::Read))) => (Some(listening), false),
        Ok(Some((listening, CaughtUp::Failed))) => (Some(listening), true),
        Ok(None) | Err(_) => (None, true),
    };
    tokio::spawn(follow_task(
        Follower {
            cluster,
            store,
            reply: weak,
            listening,
            stale,
        },
        every,
    ));
    reply
}

/// A reader's follower of one remote reply.
struct Follower {
    cluster: Cluster,
    store: Arc<dyn Store>,
    reply: Weak<Reply>,
    listening: Option<Listening>,
    /// Whether publications may have been missed (Redis was away): read the stream again.
    stale: bool,
}

async fn follow_task(mut follower: Follower, every: Duration) {
    let Some(message_id) = follower.reply.upgrade().map(|r| r.message_id) else {
        return;
    };
    let mut database = tokio::time::interval(every);
    database.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    database.reset();
    loop {
        if follower.listening.is_none() {
            follower.listening = follower.cluster.listen_reply(message_id).await.ok();
        }
        if follower.listening.is_some() && follower.stale {
            match catch_up(&follower.cluster, &follower.reply, message_id).await {
                CaughtUp::Ended => return,
                CaughtUp::Read => follower.stale = false,
                CaughtUp::Failed => {}
            }
        }
        let heard = async {
            match follower.listening.as_mut() {
                Some(listening) => listening.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            heard = heard => match heard {
                Some(Heard::Batch(payload)) => {
                    let Some(live) = follower.reply.upgrade() else { return };
                    match apply(&live, parse_batch(&payload)) {
                        Applied::Continued => {}
                        Applied::Ended => return,
                        Applied::Gap => follower.stale = true,
                    }
                }
                // The connection resubscribes by itself; what it missed is read again
                // (or filled in from the database) once it is back.
                Some(Heard::Lost) => follower.stale = true,
                None => follower.listening = None,
            },
            _ = database.tick() => {
                let Some(live) = follower.reply.upgrade() else { return };
                if from_database(follower.store.as_ref(), &live).await {
                    return;
                }
            }
        }
    }
}

/// How reading a reply's stream went.
enum CaughtUp {
    /// The reply ended (or nobody holds it any more).
    Ended,
    /// Read and applied as far as it continues the reply.
    Read,
    /// Redis did not answer.
    Failed,
}

/// Reads the reply's stream from its start and applies what continues the reply.
async fn catch_up(cluster: &Cluster, reply: &Weak<Reply>, message_id: MessageId) -> CaughtUp {
    let mut redis = cluster.redis();
    let read = cluster
        .answer(
            redis::cmd("XRANGE")
                .arg(cluster.key(&channel_name(message_id)))
                .arg("-")
                .arg("+")
                .query_async::<redis::streams::StreamRangeReply>(&mut redis),
        )
        .await;
    let Some(reply) = reply.upgrade() else {
        return CaughtUp::Ended;
    };
    let Ok(read) = read else {
        return CaughtUp::Failed;
    };
    for entry in read.ids {
        let Some(redis::Value::BulkString(payload)) = entry.map.get("b") else {
            continue;
        };
        match apply(&reply, parse_batch(payload)) {
            Applied::Ended => return CaughtUp::Ended,
            // The stream's start is gone or a batch is missing: the database fills in up
            // to its checkpoint, and later batches continue from there.
            Applied::Gap => return CaughtUp::Read,
            Applied::Continued => {}
        }
    }
    CaughtUp::Read
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
