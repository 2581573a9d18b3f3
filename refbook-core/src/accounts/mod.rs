//! Accounts: registration, logins (password and WeChat), token refresh with rotation and
//! reuse detection, logout, profiles, password change and account deletion.

mod api_keys;
mod bearer;
mod model;
mod password;
mod profiles;
mod session_cache;
pub(crate) mod tokens;
pub mod validate;
mod wechat;

use std::sync::Arc;

pub use api_keys::{is_api_key, API_KEY_PREFIX, MAX_API_KEYS_PER_USER};
pub use model::{
    ApiKey, AuthUser, Credential, LoginPayload, NewApiKey, Profile, ProfileUpdate, PublicUser,
    Registration, Usage, User,
};
pub use password::Passwords;
pub use tokens::{AccessClaims, Tokens};
pub use wechat::{HttpWeChat, WeChat, WeChatError, WeChatIdentity};

use crate::error::{Error, Result};
use crate::store::{unique_key, NewUser, RefreshOutcome, Store, UserRecord};
use crate::timestamp::{Clock, SystemClock, Timestamp};

/// The nickname of users created by a WeChat login.
const WECHAT_DEFAULT_NICKNAME: &str = "微信用户";

/// The accounts service.
pub struct Accounts {
    store: Arc<dyn Store>,
    passwords: Passwords,
    tokens: Tokens,
    wechat: Option<Arc<dyn WeChat>>,
    daily_token_quota: u64,
    /// How long after its rotation a refresh token may be presented again.
    refresh_reuse_grace: std::time::Duration,
    /// Recently authenticated credentials (revoked here at once).
    sessions: session_cache::SessionCache,
    /// Where the time comes from (token expiry, session lifetimes, grace periods).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("tokens", &self.tokens)
            .field("wechat", &self.wechat.is_some())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// The service over `store`, signing with `tokens`; without `wechat`, WeChat login
    /// answers "unavailable". `daily_token_quota` 0 means unlimited.
    pub fn new(
        store: Arc<dyn Store>,
        tokens: Tokens,
        wechat: Option<Arc<dyn WeChat>>,
        daily_token_quota: u64,
    ) -> Self {
        Self {
            store,
            passwords: Passwords::new(),
            tokens,
            wechat,
            daily_token_quota,
            refresh_reuse_grace: std::time::Duration::from_secs(10),
            sessions: session_cache::SessionCache::new(std::time::Duration::ZERO),
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads the time from `clock` instead of the system's (tests move it to expire
    /// tokens and sessions without waiting).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Remembers authenticated credentials for `ttl` (zero: not at all, the default), so
    /// that most requests authenticate without a database read. Revocations made by this
    /// process take effect at once; those made by another instance once `ttl` passes.
    #[must_use]
    pub fn with_auth_cache(mut self, ttl: std::time::Duration) -> Self {
        self.sessions = session_cache::SessionCache::new(ttl);
        self
    }

    /// Makes revocations (logout, logout-all, password change, account deletion, key
    /// revocation) take effect on every instance of `cluster` at once, cached credentials
    /// included. Call after [`with_auth_cache`](Self::with_auth_cache).
    #[must_use]
    pub fn with_cluster(mut self, cluster: crate::cluster::Cluster) -> Self {
        self.sessions.share(cluster);
        self
    }

    /// Sets how long after its rotation a refresh token presented again (two tabs, a
    /// request retried after its answer was lost) gets a new pair in the same session
    /// instead of ending it (default 10 s). After that, reuse ends the session.
    #[must_use]
    pub fn with_refresh_reuse_grace(mut self, grace: std::time::Duration) -> Self {
        self.refresh_reuse_grace = grace;
        self
    }

    /// Creates a user with a password and signs them in.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad username, password, email or nickname; `Conflict` for a
    /// username or email already taken; `Internal` when the database fails.
    pub async fn register(&self, reg: Registration) -> Result<LoginPayload> {
        let username = validate::username(&reg.username)?;
        validate::password("password", &reg.password)?;
        let email = match reg.email.as_deref() {
            Some(raw) => validate::email(raw)?,
            None => None,
        };
        let nickname = match reg.nickname.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => validate::nickname(n)?,
            _ => username.clone(),
        };
        // Cheap checks before the expensive hash; the unique index settles races.
        if self
            .store
            .user_by_username_key(&unique_key(&username))
            .await?
            .is_some()
        {
            return Err(crate::store::StoreError::Conflict("username").into());
        }
        if let Some(email) = &email {
            if self
                .store
                .user_by_email_key(&unique_key(email))
                .await?
                .is_some()
            {
                return Err(crate::store::StoreError::Conflict("email").into());
            }
        }
        let hash = self.passwords.hash(reg.password).await?;
        let user = self
            .store
            .create_user(
                NewUser {
                    username: Some(username),
                    email,
                    nickname,
                    password_hash: Some(hash),
                    ..NewUser::default()
                },
                self.now(),
            )
            .await?;
        self.start_session(&user).await
    }

    /// Signs in with a username (or email) and password. Every failure is the same
    /// `bad_credentials` error after the same amount of hashing work.
    ///
    /// # Errors
    ///
    /// `Unauthorized` (`bad_credentials`) for any wrong identifier or password; `Internal`
    /// when the database fails.
    pub async fn login(&self, identifier: &str, password: String) -> Result<LoginPayload> {
        let user = self.find_by_login(identifier).await?;
        let user = self.check_password(user, password).await?;
        self.start_session(&user).await
    }

    /// The key that a sign-in or sign-up attempt with `identifier` (a username or email, as
    /// typed) counts against in the per-account limits: the account it resolves to, by
    /// the same normalisation login uses (NFKC, case folding; an email to its account), so
    /// every spelling of one account draws on one allowance. An identifier that resolves
    /// to no account is keyed by its normalised form. `None` for an empty one.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn attempt_key(&self, identifier: &str) -> Result<Option<String>> {
        let trimmed = identifier.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if let Some(user) = self.find_by_login(trimmed).await? {
            return Ok(Some(format!("user:{}", user.id)));
        }
        Ok(Some(if trimmed.contains('@') {
            format!("email:{}", unique_key(trimmed))
        } else {
            match validate::username(trimmed) {
                Ok(name) => format!("name:{}", unique_key(&name)),
                Err(_) => format!("text:{}", unique_key(trimmed)),
            }
        }))
    }

    async fn find_by_login(&self, identifier: &str) -> Result<Option<UserRecord>> {
        let identifier = identifier.trim();
        // Nothing stored can match (and PostgreSQL cannot compare NUL): an unknown user,
        // answered after the same dummy hash as any other.
        if identifier.is_empty() || crate::text::has_forbidden_control(identifier) {
            return Ok(None);
        }
        Ok(if identifier.contains('@') {
            self.store
                .user_by_email_key(&unique_key(identifier))
                .await?
        } else {
            match validate::username(identifier) {
                Ok(name) => self.store.user_by_username_key(&unique_key(&name)).await?,
                Err(_) => None,
            }
        })
    }

    /// Verifies the password of `user` (or dummy work when absent); the user on success.
    async fn check_password(
        &self,
        user: Option<UserRecord>,
        password: String,
    ) -> Result<UserRecord> {
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = self.passwords.verify(password, hash).await?;
        match user {
            Some(user) if ok => Ok(user),
            _ => Err(Error::bad_credentials()),
        }
    }

    /// Signs in with a `wx.login` code; the first login creates the user.
    ///
    /// # Errors
    ///
    /// `Unauthorized` for a bad or used code, `RateLimited` when WeChat throttles,
    /// `UpstreamUnavailable` when WeChat is unavailable or not configured; `Internal` when
    /// the database fails.
    pub async fn login_wechat(&self, code: &str) -> Result<LoginPayload> {
        let code = code.trim();
        if code.is_empty() || code.len() > 256 || crate::text::has_forbidden_control(code) {
            return Err(Error::invalid(
                "code",
                "缺少微信登录凭证",
                "A wx.login code is required",
            ));
        }
        let wechat = self.wechat.as_ref().ok_or(WeChatError::NotConfigured)?;
        let identity = wechat.code2session(code).await?;
        let user = match self.store.user_by_openid(&identity.openid).await? {
            Some(user) => user,
            None => {
                let created = self
                    .store
                    .create_user(
                        NewUser {
                            nickname: WECHAT_DEFAULT_NICKNAME.to_owned(),
                            wechat_openid: Some(identity.openid.clone()),
                            wechat_unionid: identity.unionid,
                            ..NewUser::default()
                        },
                        self.now(),
                    )
                    .await;
                match created {
                    Ok(user) => user,
                    // Two first logins at once: the other one created the user.
                    Err(crate::store::StoreError::Conflict(_)) => self
                        .store
                        .user_by_openid(&identity.openid)
                        .await?
                        .ok_or_else(|| Error::internal("WeChat user vanished after conflict"))?,
                    Err(other) => return Err(other.into()),
                }
            }
        };
        self.start_session(&user).await
    }

    /// Exchanges a refresh token for a new login payload (rotation). A token presented a
    /// second time ends its whole login session, unless within the reuse grace of its
    /// first exchange (then it gets another new pair in the same session).
    ///
    /// # Errors
    ///
    /// `Unauthorized` for an unknown, expired or reused token; `Internal` when the database
    /// fails.
    pub async fn refresh(&self, refresh_token: &str) -> Result<LoginPayload> {
        let now = self.now();
        let new_token = tokens::random_token();
        let outcome = self
            .store
            .rotate_refresh_token(
                &tokens::refresh_token_hash(refresh_token.trim()),
                &tokens::refresh_token_hash(&new_token),
                now.plus_seconds(self.refresh_ttl()),
                now,
                i64::try_from(self.refresh_reuse_grace.as_millis()).unwrap_or(i64::MAX),
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated {
                session_id,
                user_id,
            } => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or_else(Error::unauthorized)?;
                self.payload(&user, session_id, new_token, now)
            }
            RefreshOutcome::Reused { user_id } => {
                self.sessions.revoke_user(user_id);
                tracing::warn!("refresh token reused: its login session was ended");
                Err(Error::unauthorized())
            }
            RefreshOutcome::Invalid => Err(Error::unauthorized()),
        }
    }

    /// Ends the session of `refresh_token` (if it is the caller's), else the caller's
    /// current session; with `all`, every session of the user. API keys are not login
    /// sessions: a caller using one ends nothing without a refresh token or `all`, and
    /// keys themselves are revoked one by one ([`revoke_api_key`](Self::revoke_api_key)).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn logout(
        &self,
        auth: &AuthUser,
        refresh_token: Option<&str>,
        all: bool,
    ) -> Result<()> {
        if all {
            self.store.delete_user_sessions(auth.id(), None).await?;
            self.sessions.revoke_user(auth.id());
            return Ok(());
        }
        let session = match refresh_token.map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => self
                .store
                .session_of_refresh_token(&tokens::refresh_token_hash(token))
                .await?
                .filter(|(_, owner)| *owner == auth.id())
                .map(|(session, _)| session),
            None => auth.session_id(),
        };
        if let Some(session) = session {
            self.store.delete_session(session, auth.id()).await?;
            self.sessions.revoke_user(auth.id());
        }
        Ok(())
    }

    /// Forgets expired login sessions (run periodically).
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(self.store.purge_expired_sessions(self.now()).await?)
    }

    fn refresh_ttl(&self) -> i64 {
        i64::try_from(self.tokens.refresh_ttl_secs()).unwrap_or(i64::MAX)
    }

    async fn start_session(&self, user: &UserRecord) -> Result<LoginPayload> {
        let now = self.now();
        let refresh = tokens::random_token();
        let session_id = self
            .store
            .create_session(
                user.id,
                &tokens::refresh_token_hash(&refresh),
                now.plus_seconds(self.refresh_ttl()),
                now,
            )
            .await?;
        self.payload(user, session_id, refresh, now)
    }

    fn payload(
        &self,
        user: &UserRecord,
        session_id: i64,
        refresh_token: String,
        now: Timestamp,
    ) -> Result<LoginPayload> {
        Ok(LoginPayload {
            token: self.tokens.issue_access(user.id, session_id, now)?,
            refresh_token,
            expires_in: self.tokens.access_ttl_secs(),
            refresh_expires_in: self.tokens.refresh_ttl_secs(),
            user: User::from(user),
        })
    }
}
