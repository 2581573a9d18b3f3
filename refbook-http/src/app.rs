//! [`App`]: the server's state as handlers see it — the Refbook, the server's settings,
//! its metrics, the login and chat limits, and the OpenAPI document. (A request's way
//! from arrival to response is [`Pipeline`](crate::pipeline::Pipeline)'s.)

use std::net::IpAddr;
use std::sync::Arc;

use refbook_core::rate_limit::RateLimiter;
use refbook_core::Refbook;

use crate::api_error::ApiError;
use crate::metrics::Metrics;
use crate::settings::HttpSettings;
use refbook_core::domain::UserId;

/// The server's state; cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    refbook: Refbook,
    settings: HttpSettings,
    login_limiter: Option<RateLimiter>,
    chat_limiter: Option<RateLimiter>,
    metrics: Arc<Metrics>,
    /// The OpenAPI document of this server.
    openapi: serde_json::Value,
}

impl App {
    /// The state over a built [`Refbook`] with the server's `settings`, counting into
    /// `metrics` (the set the Refbook was [`instrument`](crate::metrics::instrument)ed
    /// with, if it was), serving `openapi` as its OpenAPI document
    /// ([`openapi::document`](crate::openapi::document) of its configuration).
    pub fn new(
        refbook: Refbook,
        settings: HttpSettings,
        metrics: Arc<Metrics>,
        openapi: serde_json::Value,
    ) -> Self {
        let login_limiter = refbook.rate_limiter(settings.login_rate_per_min, "login");
        let chat_limiter = refbook.rate_limiter(settings.chat_rate_per_min, "chat");
        Self {
            inner: Arc::new(Inner {
                refbook,
                settings,
                login_limiter,
                chat_limiter,
                metrics,
                openapi,
            }),
        }
    }

    /// The Refbook instance.
    pub fn refbook(&self) -> &Refbook {
        &self.inner.refbook
    }

    /// The server's own settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    /// This server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The OpenAPI document of this server.
    pub fn openapi_document(&self) -> &serde_json::Value {
        &self.inner.openapi
    }

    /// Counts a credential attempt against the login/register limits: per client IP, and
    /// per account for `identifier` (a username or email as typed), every spelling of one
    /// account counted together ([`Accounts::attempt_key`](refbook_core::accounts::Accounts::attempt_key)).
    pub async fn check_login_rate(
        &self,
        ip: IpAddr,
        identifier: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(limiter) = &self.inner.login_limiter else {
            return Ok(());
        };
        let account = match identifier {
            Some(identifier) => self.refbook().accounts().attempt_key(identifier).await?,
            None => None,
        };
        limiter
            .check(ip, account.as_deref())
            .await
            .map_err(ApiError::from)
    }

    /// Counts a generation against the chat limits (per user and per client IP).
    pub async fn check_chat_rate(&self, ip: IpAddr, user_id: UserId) -> Result<(), ApiError> {
        match &self.inner.chat_limiter {
            Some(limiter) => limiter
                .check(ip, Some(&user_id.to_string()))
                .await
                .map_err(ApiError::from),
            None => Ok(()),
        }
    }

    /// Periodic upkeep: forget expired sessions and idle rate-limit keys.
    pub async fn maintain(&self) {
        for limiter in [&self.inner.login_limiter, &self.inner.chat_limiter]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
        }
        match self.refbook().accounts().purge_expired_sessions().await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "purged expired login sessions"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err.cause_chain(), "session purge failed"),
        }
    }
}
