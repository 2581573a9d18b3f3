//! Many instances as one server, through Redis (`REFBOOK_REDIS_URL`): what one instance
//! does, the others learn at once. Without it none of this runs and one process (or
//! several on one database, with the lag of its checkpoints) is the whole server.
//!
//! - [`notice`] — [`Notice`]s on one control channel: stop a reply, forget a
//!   conversation's finished reply, forget a user's cached credentials.
//! - live replies: the owner of a running reply appends its events to a Redis Stream
//!   (`reply:{message_id}`) and publishes them on the channel of that name; another
//!   instance reads the stream and follows the publications, with the database's
//!   checkpoints underneath whenever Redis is away (`chat::reply::remote` does both ends;
//!   this module carries the publications to their followers).
//! - [`rate`] — rate limits counted in Redis (GCRA in one Lua script).
//! - [`slots`] — caps on things running at once, counted in Redis under leases (a user's
//!   completions on the OpenAI-compatible face).
//!
//! Keys and channels start with `REFBOOK_REDIS_PREFIX` (`refbook:`), so instances of
//! different deployments (or tests) can share one Redis.
//!
//! Redis faults never lose a reply: the owner stores replies in the database as always;
//! a publication that fails is retried, and the stream is rewritten from the start when
//! Redis comes back (it may have lost it); readers elsewhere fall back to the database's
//! checkpoints meanwhile.

pub mod notice;
pub mod rate;
pub mod slots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::MessageId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

pub use notice::Notice;
pub use redis::RedisError;

/// How long a command may wait for Redis before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request waits on Redis for an answer it needs now (a rate count, a place)
/// before it goes on without.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// After Redis failed to answer such a call, how long the next ones go straight to their
/// fallback instead of waiting again (a hung Redis costs one wait, not one per request).
const BACK_OFF: Duration = Duration::from_secs(2);

/// Handles the notices of other instances.
pub type NoticeHandler = Arc<dyn Fn(&Notice) + Send + Sync>;

/// What a follower of a remote reply hears on its channel.
#[derive(Debug)]
pub(crate) enum Heard {
    /// A published batch of the reply's events.
    Batch(bytes::Bytes),
    /// The connection to Redis was lost: publications may have been missed.
    Lost,
}

/// The connection of this instance to the others. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    redis: ConnectionManager,
    prefix: String,
    /// This instance's name on the notices it sends (its own come back and are skipped).
    instance: String,
    handlers: Mutex<Vec<NoticeHandler>>,
    /// Followers of replies generating elsewhere, by message id.
    followers: Mutex<HashMap<MessageId, Vec<mpsc::UnboundedSender<Heard>>>>,
    /// When Redis last failed to answer a call that waits for it (`None`: it answers).
    failed_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("prefix", &self.inner.prefix)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// Connects to Redis at `url` (lazily: an instance starts while Redis is down, and
    /// reconnects by itself), naming keys and channels with `prefix`. Must be called
    /// inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// The URL is not a Redis URL.
    pub fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        use rand::Rng;
        let nonce: u64 = rand::thread_rng().gen();
        let instance = format!("pid{}-{nonce:016x}", std::process::id());
        let client = redis::Client::open(url)?;
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let (pushes, heard) = mpsc::unbounded_channel::<PushInfo>();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(pushes)
            .set_automatic_resubscription()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let redis = ConnectionManager::new_lazy_with_config(client, config)?;
        let cluster = Self {
            inner: Arc::new(Inner {
                redis,
                prefix: prefix.to_owned(),
                instance,
                handlers: Mutex::default(),
                followers: Mutex::default(),
                failed_at: Mutex::default(),
            }),
        };
        tokio::spawn(dispatch(Arc::downgrade(&cluster.inner), heard));
        tokio::spawn(subscribe_control(cluster.clone()));
        Ok(cluster)
    }

    /// A connection for commands (multiplexed, reconnecting).
    pub(crate) fn redis(&self) -> ConnectionManager {
        self.inner.redis.clone()
    }

    /// `prefix` + `name`: a key or channel of this deployment.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    fn control_channel(&self) -> String {
        self.key("control")
    }

    /// Calls `handler` with every notice another instance sends.
    pub fn on_notice(&self, handler: NoticeHandler) {
        lock(&self.inner.handlers).push(handler);
    }

    /// Tells every other instance (fire and forget: while Redis does not answer the notice
    /// is dropped, and each kind of notice has its fallback, see [`Notice`]).
    pub fn notify(&self, notice: Notice) {
        let payload = notice::encode(&self.inner.instance, &notice);
        let channel = self.control_channel();
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut redis = cluster.redis();
            let sent = cluster
                .answer(
                    redis::cmd("PUBLISH")
                        .arg(&channel)
                        .arg(payload)
                        .query_async::<i64>(&mut redis),
                )
                .await;
            if let Err(err) = sent {
                tracing::debug!(error = %err, ?notice, "a notice was not sent");
            }
        });
    }

    /// Runs `call`, a Redis call something waits for (a request, a reader), within
    /// [`ANSWER_WITHIN`]; for
    /// [`BACK_OFF`] after one failed, fails at once. An outage is logged once, when it
    /// begins, and once when Redis answers again; callers fall back quietly.
    pub(crate) async fn answer<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        let failed_lately = lock(&self.inner.failed_at).is_some_and(|at| at.elapsed() < BACK_OFF);
        if failed_lately {
            return Err((redis::ErrorKind::Io, "Redis failed lately; not asked").into());
        }
        let result = match tokio::time::timeout(ANSWER_WITHIN, call).await {
            Ok(result) => result,
            Err(_) => Err((redis::ErrorKind::Io, "Redis did not answer in time").into()),
        };
        let mut failed_at = lock(&self.inner.failed_at);
        match &result {
            Ok(_) => {
                if failed_at.take().is_some() {
                    tracing::info!("Redis answers again: limits and notices are shared again");
                }
            }
            Err(err) => {
                if failed_at.is_none() {
                    tracing::warn!(error = %err, "Redis does not answer: this instance counts limits alone and sends no notices until it does");
                }
                *failed_at = Some(Instant::now());
            }
        }
        result
    }

    /// Starts hearing the publications of a reply generating elsewhere; dropping the
    /// [`Listening`] stops.
    pub(crate) async fn listen_reply(
        &self,
        message_id: MessageId,
    ) -> redis::RedisResult<Listening> {
        let (sender, heard) = mpsc::unbounded_channel();
        let first = {
            let mut followers = lock(&self.inner.followers);
            let list = followers.entry(message_id).or_default();
            list.push(sender);
            list.len() == 1
        };
        let listening = Listening {
            cluster: self.clone(),
            message_id,
            heard,
        };
        if first {
            let mut redis = self.redis();
            self.answer(redis.subscribe(self.key(&channel_name(message_id))))
                .await?;
        }
        Ok(listening)
    }

    fn stop_listening(&self, message_id: MessageId) {
        let last = {
            let mut followers = lock(&self.inner.followers);
            let Some(list) = followers.get_mut(&message_id) else {
                return;
            };
            list.retain(|sender| !sender.is_closed());
            let last = list.is_empty();
            if last {
                followers.remove(&message_id);
            }
            last
        };
        if last {
            let cluster = self.clone();
            tokio::spawn(async move {
                // A reader that came meanwhile keeps the subscription.
                if lock(&cluster.inner.followers).contains_key(&message_id) {
                    return;
                }
                let mut redis = cluster.redis();
                let _ = redis
                    .unsubscribe(cluster.key(&channel_name(message_id)))
                    .await;
            });
        }
    }
}

/// A follower's subscription to one remote reply.
pub(crate) struct Listening {
    cluster: Cluster,
    message_id: MessageId,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl Listening {
    /// The next thing heard (`None` if the cluster is gone).
    pub(crate) async fn next(&mut self) -> Option<Heard> {
        self.heard.recv().await
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.heard.close();
        self.cluster.stop_listening(self.message_id);
    }
}

/// Subscribes to the control channel, retrying until Redis answers; after that the
/// connection resubscribes by itself whenever it reconnects.
async fn subscribe_control(cluster: Cluster) {
    let mut pause = Duration::from_millis(100);
    loop {
        let mut redis = cluster.redis();
        match redis.subscribe(cluster.control_channel()).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, "Redis: cannot subscribe to the control channel yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Routes what Redis pushes: control notices to the handlers, reply publications to
/// their followers, a lost connection to every follower.
async fn dispatch(inner: std::sync::Weak<Inner>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                    continue;
                };
                let (Some(channel), Some(payload)) = (bytes_of(channel), bytes_of(payload)) else {
                    continue;
                };
                route(&inner, &channel, payload);
            }
            PushKind::Disconnection => {
                tracing::warn!("Redis: connection lost; reconnecting");
                for list in lock(&inner.followers).values() {
                    for sender in list {
                        let _ = sender.send(Heard::Lost);
                    }
                }
            }
            _ => {}
        }
    }
}

fn route(inner: &Inner, channel: &[u8], payload: bytes::Bytes) {
    let Some(name) = channel
        .strip_prefix(inner.prefix.as_bytes())
        .and_then(|name| std::str::from_utf8(name).ok())
    else {
        return;
    };
    if name == "control" {
        match notice::decode(&payload) {
            Some((from, _)) if from == inner.instance => {}
            Some((_, notice)) => {
                let handlers = lock(&inner.handlers).clone();
                for handler in handlers {
                    handler(&notice);
                }
            }
            None => tracing::warn!("Redis: an unreadable notice was ignored"),
        }
    } else if let Some(message_id) = message_of_channel(name) {
        if let Some(list) = lock(&inner.followers).get(&message_id) {
            for sender in list {
                let _ = sender.send(Heard::Batch(payload.clone()));
            }
        }
    }
}

/// The name (after the prefix) of a reply's stream and channel.
pub(crate) fn channel_name(message_id: MessageId) -> String {
    format!("reply:{message_id}")
}

/// The message id of a reply channel's name.
fn message_of_channel(name: &str) -> Option<MessageId> {
    name.strip_prefix("reply:")?.parse().ok()
}

fn bytes_of(value: Value) -> Option<bytes::Bytes> {
    match value {
        Value::BulkString(bytes) => Some(bytes.into()),
        Value::SimpleString(text) => Some(text.into_bytes().into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_channels_name_their_message() {
        assert_eq!(channel_name(MessageId::new(42)), "reply:42");
        assert_eq!(message_of_channel("reply:42"), Some(MessageId::new(42)));
        assert_eq!(message_of_channel("control"), None);
    }
}
