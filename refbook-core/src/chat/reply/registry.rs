//! [`Replies`]: the replies this process is generating, and those it finished lately
//! (kept so that listeners re-attach to the live buffer instead of the database).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::buffer::Reply;
use crate::chat::FinishReason;
use crate::domain::ConversationId;

/// How long a finished reply stays in memory. Positions do not depend on it: after it
/// the reply is rebuilt from the database with the same positions.
const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// The most finished replies kept in memory, and the most text they may hold together;
/// the oldest go first.
const KEEP_FINISHED_COUNT: usize = 1024;
const KEEP_FINISHED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
struct Registry {
    /// Replies generating here, by conversation.
    running: HashMap<ConversationId, Arc<Reply>>,
    /// Replies finished here lately, by conversation.
    recent: HashMap<ConversationId, Arc<Reply>>,
    /// Replies generating elsewhere that readers here follow, by conversation: one
    /// follower serves every reader here, and stays until the reply ends.
    following: HashMap<ConversationId, Arc<Reply>>,
}

/// The replies of this process. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    registry: Arc<Mutex<Registry>>,
}

impl Replies {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a reply that starts generating here.
    pub(crate) fn started(&self, reply: Arc<Reply>) {
        let mut registry = self.lock();
        registry.recent.remove(&reply.conversation_id);
        registry.running.insert(reply.conversation_id, reply);
    }

    /// Moves a reply that ended from running to recent (dropping expired recent ones).
    pub(crate) fn ended(&self, reply: &Arc<Reply>) {
        let mut registry = self.lock();
        if registry
            .running
            .get(&reply.conversation_id)
            .is_some_and(|r| Arc::ptr_eq(r, reply))
        {
            registry.running.remove(&reply.conversation_id);
        }
        let now = Instant::now();
        registry.recent.retain(|_, r| {
            r.finished_at()
                .is_none_or(|at| now.duration_since(at) < KEEP_FINISHED)
        });
        registry.recent.insert(reply.conversation_id, reply.clone());
        let mut bytes: usize = registry.recent.values().map(|r| r.text_len()).sum();
        while registry.recent.len() > KEEP_FINISHED_COUNT || bytes > KEEP_FINISHED_BYTES {
            let oldest = registry
                .recent
                .iter()
                .min_by_key(|(_, r)| r.finished_at().unwrap_or(now))
                .map(|(id, r)| (*id, r.text_len()));
            let Some((id, size)) = oldest else { break };
            registry.recent.remove(&id);
            bytes -= size;
        }
    }

    /// The reply generating in the conversation here, else the one that finished here
    /// lately.
    pub fn current(&self, conversation_id: ConversationId) -> Option<Arc<Reply>> {
        let registry = self.lock();
        registry
            .running
            .get(&conversation_id)
            .or_else(|| registry.recent.get(&conversation_id))
            .cloned()
    }

    /// The reply generating in the conversation here.
    pub fn running(&self, conversation_id: ConversationId) -> Option<Arc<Reply>> {
        self.lock().running.get(&conversation_id).cloned()
    }

    /// Forgets a conversation's finished reply (its messages changed).
    pub(crate) fn forget(&self, conversation_id: ConversationId) {
        let mut registry = self.lock();
        registry.recent.remove(&conversation_id);
        registry.following.remove(&conversation_id);
    }

    /// The reply of another instance that readers here follow in the conversation, while
    /// it has not ended.
    pub(crate) fn followed(&self, conversation_id: ConversationId) -> Option<Arc<Reply>> {
        let mut registry = self.lock();
        let reply = registry.following.get(&conversation_id)?.clone();
        if reply.is_finished() {
            registry.following.remove(&conversation_id);
            return None;
        }
        Some(reply)
    }

    /// Records a reply of another instance that readers here follow.
    pub(crate) fn follows(&self, reply: &Arc<Reply>) {
        let mut registry = self.lock();
        registry
            .following
            .retain(|_, followed| !followed.is_finished());
        registry
            .following
            .insert(reply.conversation_id, reply.clone());
    }

    /// How many replies are generating here.
    pub fn active_count(&self) -> usize {
        self.lock().running.len()
    }

    /// At shutdown: lets running replies finish for up to `grace`, then stops the rest
    /// (stored as `partial`, `interrupted`) and waits up to `save` for them to be stored.
    pub async fn shutdown(&self, grace: Duration, save: Duration) {
        let deadline = Instant::now() + grace;
        while self.active_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let running: Vec<Arc<Reply>> = self.lock().running.values().cloned().collect();
        for reply in &running {
            reply.cancel(FinishReason::Interrupted);
        }
        for reply in running {
            let _ = tokio::time::timeout(save, reply.finished()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::reply::ReplyEvent;
    use crate::domain::{MessageId, MessageStatus};

    fn finished(id: i64, text: &str) -> Arc<Reply> {
        let reply = Reply::new(ConversationId::new(id), MessageId::new(id * 10), "m".into());
        reply.push(ReplyEvent::Content(text.into()));
        reply.finish(MessageStatus::Complete);
        reply
    }

    #[test]
    fn a_reply_is_running_then_recent_then_forgotten() {
        let replies = Replies::default();
        let reply = Reply::new(ConversationId::new(7), MessageId::new(70), "m".into());
        replies.started(reply.clone());
        assert!(Arc::ptr_eq(
            &replies.running(ConversationId::new(7)).unwrap(),
            &reply
        ));
        assert_eq!(replies.active_count(), 1);

        reply.finish(MessageStatus::Complete);
        replies.ended(&reply);
        assert!(
            replies.running(ConversationId::new(7)).is_none(),
            "no longer generating"
        );
        assert!(
            Arc::ptr_eq(&replies.current(ConversationId::new(7)).unwrap(), &reply),
            "kept for listeners that re-attach"
        );
        assert_eq!(replies.active_count(), 0);

        replies.forget(ConversationId::new(7));
        assert!(replies.current(ConversationId::new(7)).is_none());
    }

    #[test]
    fn an_older_reply_ending_late_does_not_unseat_the_new_one() {
        let replies = Replies::default();
        let old = Reply::new(ConversationId::new(3), MessageId::new(30), "m".into());
        replies.started(old.clone());
        let new = Reply::new(ConversationId::new(3), MessageId::new(31), "m".into());
        replies.started(new.clone());
        old.finish(MessageStatus::Partial);
        replies.ended(&old);
        assert!(
            Arc::ptr_eq(&replies.running(ConversationId::new(3)).unwrap(), &new),
            "the regenerated reply still runs"
        );
    }

    #[test]
    fn finished_replies_are_bounded_oldest_first() {
        let replies = Replies::default();
        let count = i64::try_from(KEEP_FINISHED_COUNT).unwrap() + 2;
        for id in 0..count {
            let reply = finished(id, "答");
            replies.started(reply.clone());
            replies.ended(&reply);
        }
        let kept = (0..count)
            .filter(|id| replies.current(ConversationId::new(*id)).is_some())
            .count();
        assert_eq!(kept, KEEP_FINISHED_COUNT);
        assert!(
            replies.current(ConversationId::new(count - 1)).is_some(),
            "the newest stays"
        );
    }
}
