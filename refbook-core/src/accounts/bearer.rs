//! Checking a bearer token: a personal API key, or an access token whose session still
//! exists (kept a moment in the session cache).

use super::api_keys::is_api_key;
use super::model::{AuthUser, Credential};
use super::session_cache::CacheKey;
use super::Accounts;
use crate::error::{Error, Result};

impl Accounts {
    /// Checks a bearer token: a personal API key (`rbk_…`) that still exists, or an
    /// access token (signature, expiry, and that its session still exists).
    ///
    /// # Errors
    ///
    /// `Unauthorized` for a bad, expired or revoked token or key; `Internal` when the
    /// database fails.
    pub async fn authenticate(&self, bearer: &str) -> Result<AuthUser> {
        if is_api_key(bearer) {
            return self.authenticate_api_key(bearer).await;
        }
        let claims = self.tokens.verify_access(bearer, self.now())?;
        let key = CacheKey::Session(claims.session_id);
        if let Some(cached) = self.sessions.get(&key, Some(claims.user_id)) {
            return Ok(cached);
        }
        let read_at = std::time::Instant::now();
        let user = self
            .store
            .session_user(claims.session_id, claims.user_id)
            .await?
            .ok_or_else(Error::unauthorized)?;
        let auth = AuthUser {
            user,
            credential: Credential::Session(claims.session_id),
        };
        self.sessions.put(key, read_at, &auth);
        Ok(auth)
    }
}
