//! [`Pipeline`]: one request from arrival to response — request id, language, routing,
//! CORS, authentication, the handler (from the route table), error rendering, the
//! security headers and the access log line.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use refbook_core::{Error, Language};
use tracing::Instrument;

use crate::api_error::ApiError;
use crate::app::App;
use crate::body::{full, Body};
use crate::ctx::Ctx;
use crate::router::{RouteSpec, Router};
use crate::routes::{OPENAI_PREFIX, ROUTES};

/// The header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// Answers requests: the server's state and the router over the route table. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Pipeline {
    app: App,
    router: std::sync::Arc<Router>,
}

impl Pipeline {
    /// The pipeline of `app` over [`ROUTES`].
    ///
    /// # Errors
    ///
    /// `Internal` when the route table does not build (a programming error).
    pub fn new(app: App) -> Result<Self, Error> {
        let router = Router::new(ROUTES).map_err(|e| Error::internal(e.to_string()))?;
        Ok(Self {
            app,
            router: std::sync::Arc::new(router),
        })
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(req.headers());
        let openai_face = is_openai_path(req.uri().path());
        // OpenAI clients send no `Accept-Language` and show errors as they come: `/v1`
        // answers in English unless asked otherwise; `REFBOOK_LANGUAGE` is `/api`'s default.
        let default_language = if openai_face {
            Language::En
        } else {
            self.app.refbook().config().general.language
        };
        let language = language(req.headers(), default_language);
        let client_ip = client_ip(req.headers(), peer, self.app.settings().trust_proxy_headers);
        let method = req.method().clone();
        let found = self.router.find(req.uri().path());
        let route = found.as_ref().map_or("unmatched", |(spec, _)| spec.pattern);
        let origin = req.headers().get(header::ORIGIN).cloned();
        let private = found.as_ref().is_some_and(|(spec, _)| !spec.is_public())
            || req.headers().contains_key(header::AUTHORIZATION);
        let span =
            tracing::info_span!("request", request_id = %request_id, method = %method, route);

        let mut response = async {
            let result = match found {
                None => Err(ApiError::no_route()),
                Some((spec, _)) if method == Method::OPTIONS => Ok(self.options(spec, &req)),
                Some((spec, params)) => {
                    let (parts, body) = req.into_parts();
                    let ctx = Ctx::new(self.app.clone(), parts, body, params, client_ip, language);
                    self.dispatch(spec, ctx).await
                }
            };
            let response = result.unwrap_or_else(|err| {
                if err.status().is_server_error() {
                    tracing::error!(
                        status = err.status().as_u16(),
                        cause = err.cause().unwrap_or(""),
                        "request failed"
                    );
                }
                if openai_face {
                    err.into_openai_response(language)
                } else {
                    err.into_response(language)
                }
            });
            let elapsed = started.elapsed().as_secs_f64();
            self.app.metrics().observe_request(
                route,
                method.as_str(),
                response.status().as_u16(),
                elapsed,
            );
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = elapsed * 1000.0,
                "request"
            );
            response
        }
        .instrument(span)
        .await;

        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert(REQUEST_ID, value);
        }
        security_headers(headers, private);
        self.add_cors(headers, origin.as_ref());
        response
    }

    async fn dispatch(
        &self,
        spec: &'static RouteSpec,
        mut ctx: Ctx,
    ) -> Result<Response<Body>, ApiError> {
        let Some(endpoint) = spec.endpoint(&ctx.parts.method) else {
            return Err(ApiError::method_not_allowed(&spec.methods()));
        };
        if !spec.is_public() {
            let token = bearer_token(&ctx.parts.headers).ok_or_else(Error::unauthorized)?;
            let auth = self.app.refbook().accounts().authenticate(token).await?;
            ctx.set_auth(auth);
        }
        (endpoint.handler)(ctx).await
    }

    /// `OPTIONS`: a CORS preflight (headers added by `add_cors`) or a plain `Allow` answer.
    fn options(&self, spec: &RouteSpec, req: &Request<Incoming>) -> Response<Body> {
        let allow = spec
            .endpoints
            .iter()
            .map(|e| e.verb.as_str())
            .chain(["OPTIONS"])
            .collect::<Vec<_>>()
            .join(", ");
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            headers.insert(header::ALLOW, allow.clone());
            if self.origin_allowed(req.headers().get(header::ORIGIN)) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow);
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(
                        "authorization, content-type, accept, accept-language, last-event-id, x-request-id",
                    ),
                );
                headers.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
            }
        }
        response
    }

    fn origin_allowed(&self, origin: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin.and_then(|o| o.to_str().ok()) else {
            return false;
        };
        self.app
            .settings()
            .cors_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }

    fn add_cors(&self, headers: &mut HeaderMap, origin: Option<&HeaderValue>) {
        if let Some(origin) = origin.filter(|o| self.origin_allowed(Some(o))) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-request-id, x-conversation-id, retry-after"),
            );
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// The security headers every answer carries (docs/API.md, "Headers on every answer"):
/// `nosniff` always; where the handler set none, a policy that lets nothing load or frame
/// the answer, no referrer, and `no-store` for an answer to a signed-in caller (it may
/// hold their data; covers, pages and assets set their own caching).
fn security_headers(headers: &mut HeaderMap, private: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if private && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Whether a path belongs to the OpenAI-compatible face (`/v1/…`), whose errors take
/// OpenAI's shape.
fn is_openai_path(path: &str) -> bool {
    path == "/v1" || path.starts_with(OPENAI_PREFIX)
}

/// The bearer token of an `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The incoming `X-Request-Id` when it is sane (1–128 of `[A-Za-z0-9._-]`), else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// English when `Accept-Language` prefers it over Chinese, Chinese when it prefers that,
/// else the configured default.
fn language(headers: &HeaderMap, default: Language) -> Language {
    let Some(value) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return default;
    };
    let mut best: Option<(f32, Language)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = if tag == "en" || tag.starts_with("en-") {
            Language::En
        } else if tag == "zh" || tag.starts_with("zh-") {
            Language::Zh
        } else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, lang));
        }
    }
    best.map_or(default, |(_, lang)| lang)
}

/// The client's IP: the socket peer, or with trusted proxies the first `X-Forwarded-For`
/// entry (else `X-Real-IP`).
fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .or_else(|| headers.get("x-real-ip").and_then(|v| v.to_str().ok()))
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn accept_language_picks_the_preferred_of_zh_and_en() {
        let zh = Language::Zh;
        assert_eq!(language(&headers(&[]), zh), Language::Zh);
        assert_eq!(
            language(&headers(&[("accept-language", "en-US,en;q=0.9")]), zh),
            Language::En
        );
        assert_eq!(
            language(&headers(&[("accept-language", "zh-CN,en;q=0.8")]), zh),
            Language::Zh
        );
        assert_eq!(
            language(
                &headers(&[("accept-language", "fr, en;q=0.5, zh;q=0.4")]),
                zh
            ),
            Language::En
        );
        assert_eq!(
            language(&headers(&[("accept-language", "fr")]), Language::En),
            Language::En
        );
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        assert_eq!(
            request_id(&headers(&[("x-request-id", "abc-123")])),
            "abc-123"
        );
        let fresh = request_id(&headers(&[("x-request-id", "bad id with spaces")]));
        assert_eq!(fresh.len(), 32);
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
    }
}
