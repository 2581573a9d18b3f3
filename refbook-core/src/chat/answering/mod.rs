//! The [`Answering`] service: everything that asks the model. A question in a
//! conversation, regeneration and the stateless `/api/chat/stream/` (`ask.rs`), the
//! OpenAI face's completions (`completion/`), all through the one answering step
//! (`step.rs`); the replies once started — stop, re-attach, shutdown (`running.rs`).

mod ask;
pub(super) mod completion;
mod running;
mod step;

use std::sync::Arc;
use std::time::Duration;

pub use ask::Started;

use super::reply::Replies;
use super::reply_slots::ReplySlot;
use super::shared::Shared;
use super::{sweep, tokens, Conversations, GenerationObserver};
use crate::domain::UserId;
use crate::error::{Error, ErrorKind, Result};
use crate::llm::ChatModel;
use crate::timestamp::Timestamp;

/// Asks the model, and keeps the replies it writes. Built with
/// [`services`](super::services).
pub struct Answering {
    shared: Shared,
    /// Conversations and personas, as the questions need them.
    conversations: Conversations,
    model: Arc<dyn ChatModel>,
    observer: Option<GenerationObserver>,
    /// This process's name on the reply claims it holds.
    owner: Arc<str>,
    /// The token estimate's calibration against the model's counts.
    calibration: Arc<tokens::Calibration>,
    /// One permit per generation running here (the global cap).
    generations: Arc<tokio::sync::Semaphore>,
    /// Replies generating here, per user (when Redis does not count them).
    reply_slots: Arc<super::reply_slots::UserSlots>,
    /// Settles replies whose owner died; stops with the service.
    _sweeper: sweep::Sweeper,
}

impl std::fmt::Debug for Answering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answering")
            .field("model", &self.model.model_name())
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Answering {
    /// The service; starts the sweep that settles replies whose owner died (every half
    /// lease), so it must be called inside a Tokio runtime.
    pub(super) fn new(
        shared: Shared,
        conversations: Conversations,
        model: Arc<dyn ChatModel>,
        observer: Option<GenerationObserver>,
    ) -> Self {
        let limits = shared.limits;
        let sweeper = sweep::Sweeper::start(shared.store.clone(), limits.reply_lease / 2);
        Self {
            shared,
            conversations,
            model,
            observer,
            owner: sweep::owner_id().into(),
            calibration: Arc::default(),
            generations: Arc::new(tokio::sync::Semaphore::new(limits.max_generations)),
            reply_slots: Arc::default(),
            _sweeper: sweeper,
        }
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        self.model.model_name()
    }

    /// Gets the model ready before the first question (a local model downloads and loads
    /// its weights); a server calls it at start.
    ///
    /// # Errors
    ///
    /// [`ModelError`](crate::llm::ModelError) as the first question would get it.
    pub async fn prepare_model(&self) -> Result<(), crate::llm::ModelError> {
        self.model.prepare().await
    }

    /// How the model is doing when it runs in this process (its queue and prefix cache);
    /// `None` for a remote model.
    pub fn local_model_report(&self) -> Option<crate::llm::LocalModelReport> {
        self.model.local_report()
    }

    /// One of the user's places among replies generating at once (`RATE_LIMIT` when all
    /// are taken): counted by every instance in Redis when they share it, else here (and
    /// here while Redis does not answer).
    pub(super) async fn reply_slot(&self, user_id: UserId) -> Result<ReplySlot> {
        let max = self.shared.limits.max_concurrent;
        if let Some(cluster) = &self.shared.cluster {
            let name = format!("replies:{user_id}");
            // While Redis does not answer, count here (the cluster logs the outage).
            match cluster.take_place(&name, max).await {
                Ok(Some(place)) => return Ok(ReplySlot::Shared { _place: place }),
                Ok(None) => return Err(too_many_for_user()),
                Err(_) => {}
            }
        }
        self.reply_slots
            .take(user_id, max)
            .map(|place| ReplySlot::Local { _place: place })
            .ok_or_else(too_many_for_user)
    }

    /// How many replies this process is generating now.
    pub fn generating(&self) -> usize {
        self.replies().active_count()
    }

    /// At shutdown: waits up to `grace` for replies, then stops the rest and stores them
    /// as `partial` (`interrupted`).
    pub async fn shutdown(&self, grace: Duration) {
        let save = self
            .shared
            .limits
            .reply_save_timeout
            .min(Duration::from_secs(30));
        self.replies().shutdown(grace, save).await;
    }

    fn replies(&self) -> &Replies {
        &self.shared.replies
    }

    /// One of this process's generation permits (`SERVER_BUSY` at the global cap).
    fn generation_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.generations
            .clone()
            .try_acquire_owned()
            .map_err(|_| server_busy())
    }

    /// `QUOTA_EXCEEDED` when the user has used today's tokens.
    async fn check_quota(&self, user_id: UserId) -> Result<()> {
        let quota = self.shared.limits.daily_token_quota;
        if quota == 0 {
            return Ok(());
        }
        let used = self
            .shared
            .store
            .usage_on(user_id, &Timestamp::now().utc_day())
            .await?;
        if used >= i64::try_from(quota).unwrap_or(i64::MAX) {
            return Err(Error::new(
                ErrorKind::QuotaExceeded,
                "今日额度已用完（余额不足），明天再来吧",
                "Today's token quota is used up",
            ));
        }
        Ok(())
    }
}

fn server_busy() -> Error {
    Error::new(
        ErrorKind::Busy,
        "服务器正忙，同时生成的回复太多，请稍后再试",
        "The server is generating as many replies as it can; please try again shortly",
    )
    .with_retry_after(Duration::from_secs(5))
}

/// `RATE_LIMIT`: the user already has the most replies generating at once.
fn too_many_for_user() -> Error {
    Error::new(
        ErrorKind::RateLimited,
        "同时进行的对话过多，请稍后再试",
        "Too many replies are being generated at once; please wait",
    )
    .with_retry_after(Duration::from_secs(5))
}

/// `INVALID_PARAMS`: the question does not fit the model's context.
fn question_too_long() -> Error {
    Error::invalid(
        "content",
        "问题太长，超出了 AI 模型的上下文长度，请缩短后再问",
        "The question is too long for the AI model's context; please shorten it",
    )
}
