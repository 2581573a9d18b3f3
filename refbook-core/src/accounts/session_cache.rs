//! [`SessionCache`]: who a bearer token speaks for, remembered briefly so that most
//! requests authenticate without a database read — and forgotten at once when this
//! process revokes anything of the user's.
//!
//! Exactness on one instance: every revocation (logout, logout-all, password change,
//! account deletion, key revocation, profile change) stamps the user with the time it
//! happened; a cached entry is used only if it was read from the database *after* the
//! user's last stamp (its time is taken before the read, so a read racing a revocation
//! is never trusted). Across instances sharing Redis, each revocation is sent to the
//! others, which stamp the user the same way on receipt; an instance that missed it sees
//! it when the entry expires (`ttl`, a few seconds).

use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::model::AuthUser;
use crate::cluster::{Cluster, Notice};
use crate::domain::UserId;

/// The most entries kept (each a user record, well under a kilobyte).
const MAX_ENTRIES: u64 = 100_000;

#[derive(Clone)]
struct Entry {
    /// When the database read that produced it started.
    read_at: Instant,
    user: AuthUser,
}

/// Recently authenticated credentials; `ttl` zero disables it.
#[derive(Clone)]
pub(crate) struct SessionCache {
    /// By credential: a session id or an API key's hash.
    entries: Option<Cache<CacheKey, Entry>>,
    /// When each user's credentials were last revoked here.
    revoked: Cache<UserId, Instant>,
    /// The other instances, told of each revocation.
    cluster: Option<Cluster>,
}

/// What a cached credential is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    /// An access token's session (the token's signature and expiry are checked anyway).
    Session(i64),
    /// An API key, by its hash.
    ApiKey(String),
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("enabled", &self.entries.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// A cache keeping entries for `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .build()
        });
        Self {
            entries,
            // A stamp must outlive every entry read before it.
            revoked: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
            cluster: None,
        }
    }

    /// Tells the instances of `cluster` of each revocation, and hears theirs.
    pub(crate) fn share(&mut self, cluster: Cluster) {
        let heard = self.clone();
        cluster.on_notice(std::sync::Arc::new(move |notice| {
            if let Notice::Revoked { user_id } = *notice {
                heard.revoke_here(user_id);
            }
        }));
        self.cluster = Some(cluster);
    }

    /// The cached caller for `key`, unless revoked since it was read. `user_id`, when
    /// known from the token, must match.
    pub(crate) fn get(&self, key: &CacheKey, user_id: Option<UserId>) -> Option<AuthUser> {
        let entry = self.entries.as_ref()?.get(key)?;
        if user_id.is_some_and(|id| id != entry.user.id()) {
            return None;
        }
        let revoked_at = self.revoked.get(&entry.user.id());
        if revoked_at.is_some_and(|at| at >= entry.read_at) {
            return None;
        }
        Some(entry.user)
    }

    /// Remembers `user` for `key`, read from the database starting at `read_at`.
    pub(crate) fn put(&self, key: CacheKey, read_at: Instant, user: &AuthUser) {
        if let Some(entries) = &self.entries {
            entries.insert(
                key,
                Entry {
                    read_at,
                    user: user.clone(),
                },
            );
        }
    }

    /// Forgets every cached credential of the user, here and on the other instances
    /// (call *after* the database change).
    pub(crate) fn revoke_user(&self, user_id: UserId) {
        self.revoke_here(user_id);
        if let Some(cluster) = &self.cluster {
            cluster.notify(Notice::Revoked { user_id });
        }
    }

    /// Forgets every cached credential of the user on this instance.
    fn revoke_here(&self, user_id: UserId) {
        self.revoked.insert(user_id, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Credential;
    use crate::store::UserRecord;
    use crate::timestamp::Timestamp;

    fn user(id: UserId) -> AuthUser {
        AuthUser {
            user: UserRecord {
                id,
                username: Some("u".into()),
                email: None,
                nickname: "u".into(),
                avatar_url: None,
                password_hash: None,
                wechat_openid: None,
                created_at: Timestamp::now(),
                updated_at: Timestamp::now(),
            },
            credential: Credential::Session(7),
        }
    }

    #[test]
    fn a_revocation_hides_entries_read_before_it_even_if_stored_after() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let key = CacheKey::Session(7);
        let read_at = Instant::now();
        cache.put(key.clone(), read_at, &user(UserId::new(1)));
        assert!(cache.get(&key, Some(UserId::new(1))).is_some());
        assert!(
            cache.get(&key, Some(UserId::new(2))).is_none(),
            "another user's token"
        );
        // A read that started before the revocation and was stored after it.
        let racing_read = Instant::now();
        cache.revoke_user(UserId::new(1));
        cache.put(key.clone(), racing_read, &user(UserId::new(1)));
        assert!(cache.get(&key, Some(UserId::new(1))).is_none());
        // A read after the revocation is trusted again.
        std::thread::sleep(Duration::from_millis(2));
        cache.put(key.clone(), Instant::now(), &user(UserId::new(1)));
        assert!(cache.get(&key, Some(UserId::new(1))).is_some());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        cache.put(CacheKey::Session(1), Instant::now(), &user(UserId::new(1)));
        assert!(cache.get(&CacheKey::Session(1), None).is_none());
    }
}
