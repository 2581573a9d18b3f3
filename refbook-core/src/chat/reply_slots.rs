//! The per-user cap on replies generating at once, however they were started (a
//! conversation's question or regeneration, the stateless endpoint, the OpenAI face's
//! completions): each reply holds one of its user's places until it ends. Places are
//! counted by every instance in Redis when they share it, else in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::UserId;

/// A user's place among their replies generating at once; freed when dropped.
pub(crate) enum ReplySlot {
    /// Counted here.
    Local {
        /// Held until the reply ends.
        _place: UserSlot,
    },
    /// Counted in Redis.
    Shared {
        /// Held until the reply ends.
        _place: crate::cluster::slots::SharedPlace,
    },
}

/// Replies generating per user in this process.
#[derive(Debug, Default)]
pub(crate) struct UserSlots(Mutex<HashMap<UserId, usize>>);

/// One user's generating reply counted here; frees its place when dropped.
pub(crate) struct UserSlot {
    slots: Arc<UserSlots>,
    user_id: UserId,
}

impl UserSlots {
    /// A place for `user_id` unless they hold `max` (at least one) already.
    pub(crate) fn take(self: &Arc<Self>, user_id: UserId, max: usize) -> Option<UserSlot> {
        let mut running = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = running.entry(user_id).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            slots: self.clone(),
            user_id,
        })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut running = self
            .slots
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_user_and_freed_on_drop() {
        let slots = Arc::new(UserSlots::default());
        let (alice, bob) = (UserId::new(1), UserId::new(2));
        let first = slots.take(alice, 2).unwrap();
        let _second = slots.take(alice, 2).unwrap();
        assert!(slots.take(alice, 2).is_none(), "a third is refused");
        assert!(slots.take(bob, 2).is_some(), "another user is not affected");
        drop(first);
        assert!(
            slots.take(alice, 2).is_some(),
            "a freed place is taken again"
        );
    }
}
