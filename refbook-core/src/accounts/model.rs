//! Account shapes as the contract shows them to clients.

use serde::Serialize;

use crate::domain::UserId;
use crate::store::{ApiKeyRecord, UserRecord};
use crate::timestamp::Timestamp;

/// A user as the owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    /// The user's key.
    pub id: UserId,
    /// Username, `null` for WeChat-only users.
    pub username: Option<String>,
    /// Display name.
    pub nickname: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Email, if the user gave one (shown to the user only).
    pub email: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl From<&UserRecord> for User {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            nickname: r.nickname.clone(),
            avatar_url: r.avatar_url.clone(),
            email: r.email.clone(),
            created_at: r.created_at,
        }
    }
}

/// A user as anyone may see it (no email).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicUser {
    /// The user's key.
    pub id: UserId,
    /// Username, `null` for WeChat-only users.
    pub username: Option<String>,
    /// Display name.
    pub nickname: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl From<&UserRecord> for PublicUser {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            nickname: r.nickname.clone(),
            avatar_url: r.avatar_url.clone(),
            created_at: r.created_at,
        }
    }
}

/// What every login, registration, refresh and password change returns.
#[derive(Debug, Clone, Serialize)]
pub struct LoginPayload {
    /// The access JWT.
    pub token: String,
    /// The opaque refresh token (single use).
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: u64,
    /// The signed-in user.
    pub user: User,
}

/// Token usage in the current period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Always `day` (UTC).
    pub period: &'static str,
    /// Tokens used today.
    pub used_tokens: i64,
    /// The daily limit, `null` when unlimited.
    pub limit_tokens: Option<u64>,
}

/// The user plus their usage (`GET /api/user/profile/`).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The user's fields, inline.
    #[serde(flatten)]
    pub user: User,
    /// Usage this period.
    pub usage: Usage,
}

/// What a caller authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this login session.
    Session(i64),
    /// The personal API key with this id.
    ApiKey(i64),
}

/// A caller whose bearer token (access token or API key) checked out.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user as stored now.
    pub user: UserRecord,
    /// What the caller presented.
    pub credential: Credential,
}

impl AuthUser {
    /// The user's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }

    /// The login session of the access token, `None` for an API key.
    pub fn session_id(&self) -> Option<i64> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey(_) => None,
        }
    }
}

/// A personal API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKey {
    /// Id (for revoking).
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it last authenticated a request (to the minute), `null` if never.
    pub last_used_at: Option<Timestamp>,
}

impl From<&ApiKeyRecord> for ApiKey {
    fn from(r: &ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A key just created: the only answer that shows `key`.
#[derive(Debug, Clone, Serialize)]
pub struct NewApiKey {
    /// Id (for revoking).
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// The key (`rbk_…`): shown once, stored only as a hash.
    pub key: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Always `null` for a new key.
    pub last_used_at: Option<Timestamp>,
}

/// A registration request.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Wanted username.
    pub username: String,
    /// The password as typed (hashed with argon2id before it is stored; never logged).
    pub password: String,
    /// Optional email.
    pub email: Option<String>,
    /// Optional nickname (default: the username).
    pub nickname: Option<String>,
}

/// A profile update: absent fields stay; `Some(None)` clears avatar or email.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// New nickname.
    pub nickname: Option<String>,
    /// New or cleared avatar URL.
    pub avatar_url: Option<Option<String>>,
    /// New or cleared email.
    pub email: Option<Option<String>>,
}
