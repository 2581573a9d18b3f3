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
use crate::body::{parse_form, parse_json, read_bytes};
use crate::routes::Params;

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
        let body_limit = app.refbook().config().body_limit_bytes;
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

    /// A numeric path parameter; anything else is `404` (no such resource).
    pub fn id_param(&self, name: &str) -> Result<i64, ApiError> {
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

    async fn bytes(&mut self) -> Result<bytes::Bytes, ApiError> {
        match self.body.take() {
            Some(body) => read_bytes(&self.parts.headers, body, self.body_limit).await,
            None => Ok(bytes::Bytes::new()),
        }
    }

    /// The body as JSON of type `T` (`400`/`413` on failure).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let bytes = self.bytes().await?;
        parse_json(&bytes)
    }

    /// The body as a urlencoded form, or as JSON when the content type says so.
    pub async fn form_or_json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let is_json = self
            .parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = self.bytes().await?;
        if is_json {
            parse_json(&bytes)
        } else {
            parse_form(&bytes)
        }
    }
}
