//! WeChat mini-program login: the [`WeChat`] seam and its client for `jscode2session`.
//!
//! WeChat answers errors with HTTP 200, often as `text/plain`: the body is parsed as JSON
//! whatever its content type and the outcome is decided by `errcode` alone. The
//! `session_key` it returns is a secret Refbook has no use for: it is never parsed, stored,
//! logged or returned.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::{Error, ErrorKind};

/// Who a login code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatIdentity {
    /// The user's openid for this mini-program.
    pub openid: String,
    /// The user's unionid across the developer's apps, when WeChat gives one.
    pub unionid: Option<String>,
}

/// Why a code could not be exchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WeChatError {
    /// 40029 invalid or 40163 already used code.
    #[error("invalid or used login code (errcode {0})")]
    InvalidCode(i64),
    /// 40226: WeChat blocks this user as high-risk.
    #[error("WeChat blocked this user (errcode 40226)")]
    Blocked,
    /// 45011: WeChat's rate limit.
    #[error("WeChat rate limit (errcode 45011)")]
    RateLimited,
    /// -1: WeChat is busy (after one retry).
    #[error("WeChat is busy (errcode -1)")]
    Busy,
    /// 40125 bad appsecret or 40013 bad appid: the server's configuration is wrong.
    #[error(
        "WeChat rejected the app credentials (errcode {0}); check REFBOOK_WECHAT_APPID/SECRET"
    )]
    Misconfigured(i64),
    /// App id or secret not configured.
    #[error("WeChat login is not configured (REFBOOK_WECHAT_APPID, REFBOOK_WECHAT_SECRET)")]
    NotConfigured,
    /// Network failure, timeout, 5xx, unreadable body or an unknown errcode.
    #[error("WeChat unavailable: {0}")]
    Unavailable(String),
}

impl From<WeChatError> for Error {
    fn from(err: WeChatError) -> Self {
        let (kind, zh, en) = match &err {
            WeChatError::InvalidCode(_) => (
                ErrorKind::Unauthorized,
                "微信登录凭证无效或已使用，请重新登录",
                "The WeChat login code is invalid or was already used; please log in again",
            ),
            WeChatError::Blocked => (
                ErrorKind::Unauthorized,
                "该微信账号暂时无法登录",
                "This WeChat account cannot sign in right now",
            ),
            WeChatError::RateLimited => (
                ErrorKind::RateLimited,
                "微信登录过于频繁，请稍后再试",
                "Too many WeChat logins; please try again shortly",
            ),
            WeChatError::Busy
            | WeChatError::Misconfigured(_)
            | WeChatError::NotConfigured
            | WeChatError::Unavailable(_) => (
                ErrorKind::UpstreamUnavailable,
                "微信登录暂时不可用，请稍后再试",
                "WeChat login is unavailable right now; please try again later",
            ),
        };
        let retry = matches!(err, WeChatError::RateLimited).then_some(Duration::from_secs(60));
        let mut out = Error::new(kind, zh, en).with_source(err);
        if let Some(after) = retry {
            out = out.with_retry_after(after);
        }
        out
    }
}

/// An identity provider that turns a `wx.login` code into an openid.
#[async_trait]
pub trait WeChat: Send + Sync {
    /// Exchanges a single-use login code.
    async fn code2session(&self, code: &str) -> Result<WeChatIdentity, WeChatError>;
}

/// The real `jscode2session` client.
pub struct HttpWeChat {
    client: reqwest::Client,
    base_url: String,
    appid: String,
    secret: crate::config::Secret,
}

impl std::fmt::Debug for HttpWeChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWeChat")
            .field("base_url", &self.base_url)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

/// The fields of a `jscode2session` answer Refbook reads (`session_key` deliberately not).
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: i64,
    openid: Option<String>,
    unionid: Option<String>,
}

impl HttpWeChat {
    /// A client for `base_url` (normally `https://api.weixin.qq.com`).
    pub fn new(
        client: reqwest::Client,
        base_url: impl Into<String>,
        appid: impl Into<String>,
        secret: crate::config::Secret,
    ) -> Self {
        Self {
            client,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            appid: appid.into(),
            secret,
        }
    }

    async fn call(&self, code: &str) -> Result<WeChatIdentity, WeChatError> {
        let response = self
            .client
            .get(format!("{}/sns/jscode2session", self.base_url))
            .query(&[
                ("appid", self.appid.as_str()),
                ("secret", self.secret.expose()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            // The URL holds the app secret: never let it into a message.
            .map_err(|e| WeChatError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = crate::upstream::read_limited(response, crate::upstream::MAX_SMALL_BODY)
            .await
            .map_err(|e| WeChatError::Unavailable(e.to_string()))?;
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| WeChatError::Unavailable(format!("unreadable answer (HTTP {status})")))?;
        match answer.errcode {
            0 => match answer.openid.filter(|o| !o.is_empty()) {
                Some(openid) => Ok(WeChatIdentity {
                    openid,
                    unionid: answer.unionid.filter(|u| !u.is_empty()),
                }),
                None => Err(WeChatError::Unavailable(format!(
                    "answer without openid (HTTP {status})"
                ))),
            },
            40029 | 40163 => Err(WeChatError::InvalidCode(answer.errcode)),
            40226 => Err(WeChatError::Blocked),
            45011 => Err(WeChatError::RateLimited),
            -1 => Err(WeChatError::Busy),
            40125 | 40013 | 41002 | 41004 => Err(WeChatError::Misconfigured(answer.errcode)),
            other => Err(WeChatError::Unavailable(format!("errcode {other}"))),
        }
    }
}

#[async_trait]
impl WeChat for HttpWeChat {
    async fn code2session(&self, code: &str) -> Result<WeChatIdentity, WeChatError> {
        match self.call(code).await {
            // -1 means "busy, retry": one more try after a short pause.
            Err(WeChatError::Busy) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.call(code).await
            }
            other => other,
        }
    }
}
