//! [`Ctx`]: what a handler gets — the request's parts, its body (read on demand, within the
//! size limit), path parameters, the client's address and language, and the caller.

use std::net::IpAddr;

use http::request::Parts;
use hyper::body::Incoming;
use refbook_core::accounts::AuthUser;
use refbook_core::{Error, Language, Refbook};

use crate::app::App;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;
use crate::request_body::{
    field_with_control, json_has_forbidden_control, parse_form, parse_json, read_bytes,
};

/// Path parameters of a matched route, by name.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters `(name, value)`, values already percent-decoded.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of parameter `name` (empty if absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One request as handlers see it.
pub struct Ctx {
    /// The application (Refbook and the server's own state).
    pub app: App,
    /// Method, URI, headers.
    pub parts: Parts,
    /// Path parameters.
    pub params: Params,
    /// The client's address (the socket peer, or the proxy's word when trusted).
    pub client_ip: IpAddr,
    /// The language of messages for this request.
    pub language: Language,
    body: Option<Incoming>,
    body_limit: usize,
    auth: Option<AuthUser>,
}

impl Ctx {
    /// A context for a request.
    pub fn new(
        app: App,
        parts: Parts,
        body: Incoming,
        params: Params,
        client_ip: IpAddr,
        language: Language,
    ) -> Self {
        let body_limit = app.settings().body_limit_bytes;
        Self {
            app,
            parts,
            params,
            client_ip,
            language,
            body: Some(body),
            body_limit,
            auth: None,
        }
    }

    /// The Refbook instance.
    pub fn refbook(&self) -> &Refbook {
        self.app.refbook()
    }

    /// Records the authenticated caller.
    pub fn set_auth(&mut self, auth: AuthUser) {
        self.auth = Some(auth);
    }

    /// The authenticated caller (`401` when the route did not authenticate).
    pub fn user(&self) -> Result<&AuthUser, ApiError> {
        self.auth
            .as_ref()
            .ok_or_else(|| Error::unauthorized().into())
    }

    /// A numeric path parameter as the id type it names (`ConversationId`, …); anything
    /// else is `404` (no such resource).
    pub fn id_param<T: std::str::FromStr>(&self, name: &str) -> Result<T, ApiError> {
        self.params
            .get(name)
            .parse()
            .map_err(|_| Error::not_found("资源", "Resource").into())
    }

    /// The query string's pairs, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.parts
            .uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default()
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The whole body, within the size limit and the request timeout (`408` for a body
    /// that stalls).
    async fn bytes(&mut self) -> Result<bytes::Bytes, ApiError> {
        let Some(body) = self.body.take() else {
            return Ok(bytes::Bytes::new());
        };
        let limit = std::time::Duration::from_secs(self.app.settings().request_timeout_secs.max(1));
        tokio::time::timeout(
            limit,
            read_bytes(&self.parts.headers, body, self.body_limit),
        )
        .await
        .map_err(|_| ApiError::request_timeout())?
    }

    /// A file sent as the whole body, of one of `accepted` media types (`415` otherwise),
    /// at most `limit` bytes (`413`, before the rest is read).
    pub async fn file(
        &mut self,
        accepted: &[&'static str],
        limit: usize,
    ) -> Result<(&'static str, bytes::Bytes), ApiError> {
        let media_type = self
            .content_type()
            .and_then(|given| accepted.iter().find(|t| **t == given).copied())
            .ok_or_else(|| ApiError::unsupported_file_type(accepted))?;
        let Some(body) = self.body.take() else {
            return Ok((media_type, bytes::Bytes::new()));
        };
        let timeout =
            std::time::Duration::from_secs(self.app.settings().request_timeout_secs.max(1));
        let bytes = tokio::time::timeout(timeout, read_bytes(&self.parts.headers, body, limit))
            .await
            .map_err(|_| ApiError::request_timeout())??;
        Ok((media_type, bytes))
    }

    /// The request's content type, lower-cased, without parameters.
    fn content_type(&self) -> Option<String> {
        let value = self.parts.headers.get(http::header::CONTENT_TYPE)?;
        let text = value.to_str().unwrap_or("invalid");
        Some(
            text.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase(),
        )
    }

    /// `415` unless the content type is absent or JSON (`application/json`, `…+json`).
    fn require_json(&self) -> Result<(), ApiError> {
        match self.content_type() {
            Some(kind) if kind != "application/json" && !kind.ends_with("+json") => {
                Err(ApiError::unsupported_media_type())
            }
            _ => Ok(()),
        }
    }

    /// The body as JSON of type `T`: `415` for another content type, `400` for malformed
    /// JSON or text holding NUL or other control characters, `413` when too large.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        self.require_json()?;
        let bytes = self.bytes().await?;
        if json_has_forbidden_control(&bytes) {
            return Err(ApiError::invalid(
                field_with_control(&bytes).as_deref(),
                "文本不能包含控制字符（如 NUL）",
                "Text must not contain control characters (such as NUL)",
            ));
        }
        parse_json(&bytes)
    }

    /// As [`json`](Self::json) for a body of credentials: control characters are left to
    /// the accounts service, which answers them like any other bad credential (`401`).
    pub async fn credentials_json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        self.require_json()?;
        let bytes = self.bytes().await?;
        parse_json(&bytes)
    }

    /// Credentials as a urlencoded form (OAuth2's password grant), or as JSON when the
    /// content type says so.
    pub async fn credentials_form<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let is_json = self
            .content_type()
            .is_some_and(|kind| kind == "application/json" || kind.ends_with("+json"));
        if is_json {
            return self.credentials_json().await;
        }
        let bytes = self.bytes().await?;
        parse_form(&bytes)
    }
}
