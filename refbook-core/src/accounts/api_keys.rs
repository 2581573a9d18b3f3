//! Personal API keys: long-lived bearer tokens (`rbk_` + 256 random bits) that
//! authenticate as their user wherever an access token does. Only a key's SHA-256 is
//! stored; the key itself is shown once, when it is created.

use super::model::{ApiKey, AuthUser, Credential, NewApiKey};
use super::session_cache::CacheKey;
use super::{tokens, validate, Accounts};
use crate::error::{Error, ErrorKind, Result};

/// The prefix that marks a bearer token as an API key.
pub const API_KEY_PREFIX: &str = "rbk_";

/// The most keys one user may hold.
pub const MAX_API_KEYS_PER_USER: usize = 20;

/// How stale a key's recorded last use may get before a request writes it again.
const LAST_USED_PRECISION_SECS: i64 = 60;

/// Whether a bearer token has the shape of an API key (rather than a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}

/// A new key: the prefix and 256 random bits, base64url.
fn generate() -> String {
    format!("{API_KEY_PREFIX}{}", tokens::random_token())
}

impl Accounts {
    /// Creates a personal API key named `name` (1–64 characters).
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` for a bad name, `CONFLICT` when the user already holds
    /// [`MAX_API_KEYS_PER_USER`] keys.
    pub async fn create_api_key(&self, auth: &AuthUser, name: &str) -> Result<NewApiKey> {
        let name = validate::api_key_name(name)?;
        let key = generate();
        let stored = self
            .store
            .create_api_key(
                auth.id(),
                &name,
                &tokens::refresh_token_hash(&key),
                MAX_API_KEYS_PER_USER,
                self.now(),
            )
            .await?
            .map_err(|_| {
                Error::new(
                    ErrorKind::Conflict,
                    format!("最多只能有 {MAX_API_KEYS_PER_USER} 个 API 密钥，请先删除不用的"),
                    format!("At most {MAX_API_KEYS_PER_USER} API keys per user; revoke one first"),
                )
            })?;
        Ok(NewApiKey {
            id: stored.id,
            name: stored.name,
            key,
            created_at: stored.created_at,
            last_used_at: None,
        })
    }

    /// The caller's keys, newest first (never the keys themselves).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn api_keys(&self, auth: &AuthUser) -> Result<Vec<ApiKey>> {
        let keys = self.store.api_keys(auth.id()).await?;
        Ok(keys.iter().map(ApiKey::from).collect())
    }

    /// Revokes one of the caller's keys; it stops working at once.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown id or another user's key.
    pub async fn revoke_api_key(&self, auth: &AuthUser, id: i64) -> Result<()> {
        if self.store.delete_api_key(id, auth.id()).await? {
            self.sessions.revoke_user(auth.id());
            Ok(())
        } else {
            Err(Error::not_found("API 密钥", "API key"))
        }
    }

    /// The caller a presented API key speaks for (`401` when unknown or revoked).
    pub(super) async fn authenticate_api_key(&self, key: &str) -> Result<AuthUser> {
        if key.len() > 128 {
            return Err(Error::unauthorized());
        }
        let hash = tokens::refresh_token_hash(key);
        let cache_key = CacheKey::ApiKey(hash.clone());
        if let Some(cached) = self.sessions.get(&cache_key, None) {
            return Ok(cached);
        }
        let read_at = std::time::Instant::now();
        let now = self.now();
        let found = self
            .store
            .api_key_user(&hash, now, now.plus_seconds(-LAST_USED_PRECISION_SECS))
            .await?;
        let (stored, user) = found.ok_or_else(Error::unauthorized)?;
        let auth = AuthUser {
            user,
            credential: Credential::ApiKey(stored.id),
        };
        self.sessions.put(cache_key, read_at, &auth);
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_long() {
        let a = generate();
        assert!(is_api_key(&a));
        assert_ne!(a, generate());
        // 32 random bytes in unpadded base64url: 43 characters after the prefix.
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 43);
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
}
