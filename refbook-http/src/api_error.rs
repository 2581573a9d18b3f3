//! [`ApiError`]: the contract's error responses, and the one place core error kinds become
//! HTTP statuses and codes.

use std::time::Duration;

use http::{header, HeaderValue, Method, Response, StatusCode};
use refbook_core::{Error, ErrorKind, Language, Message};
use serde::Serialize;

use crate::body::{json_response, Body};

/// An error on its way to the client as `{"code", "message", "details"?}` (boxed: it
/// travels through every handler's `Result`).
#[derive(Debug)]
pub struct ApiError(Box<Repr>);

#[derive(Debug)]
struct Repr {
    status: StatusCode,
    code: &'static str,
    message: Message,
    field: Option<String>,
    retry_after: Option<Duration>,
    allow: Option<String>,
    /// The cause, logged for 500s and upstream failures; never sent.
    cause: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
}

#[derive(Serialize)]
struct Details<'a> {
    field: &'a str,
}

/// The contract's status and code for each kind of core error.
pub fn status_and_code(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "INVALID_PARAMS"),
        ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        ErrorKind::QuotaExceeded => (StatusCode::PAYMENT_REQUIRED, "QUOTA_EXCEEDED"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "CONFLICT"),
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT"),
        ErrorKind::ModelUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "MODEL_ERROR"),
        ErrorKind::UpstreamUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE"),
        ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "SERVER_BUSY"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR"),
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let (status, code) = status_and_code(err.kind());
        let chain = err.cause_chain();
        Self(Box::new(Repr {
            status,
            code,
            message: err.message().clone(),
            field: err.field().map(str::to_owned),
            retry_after: err.retry_after(),
            allow: None,
            cause: (!chain.is_empty()).then_some(chain),
        }))
    }
}

impl ApiError {
    /// `400 INVALID_PARAMS` about `field` (or the body as a whole).
    pub fn invalid(field: Option<&str>, zh: impl Into<String>, en: impl Into<String>) -> Self {
        let mut err = Error::new(ErrorKind::InvalidInput, zh.into(), en.into());
        if let Some(field) = field {
            err = err.with_field(field.to_owned());
        }
        err.into()
    }

    /// `404 NOT_FOUND` for a path no route serves.
    pub fn no_route() -> Self {
        Error::new(ErrorKind::NotFound, "接口不存在", "No such endpoint").into()
    }

    /// `405 METHOD_NOT_ALLOWED` with the `Allow` header.
    pub fn method_not_allowed(allowed: &[Method]) -> Self {
        let allow = allowed
            .iter()
            .map(Method::as_str)
            .chain(std::iter::once("OPTIONS"))
            .collect::<Vec<_>>()
            .join(", ");
        Self(Box::new(Repr {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: Message::new("不支持该请求方法", "Method not allowed on this endpoint"),
            field: None,
            retry_after: None,
            allow: Some(allow),
            cause: None,
        }))
    }

    /// `413 PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self(Box::new(Repr {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "PAYLOAD_TOO_LARGE",
            message: Message::new(
                format!("请求体超过 {} KiB 上限", limit / 1024),
                format!("Request body exceeds the {} KiB limit", limit / 1024),
            ),
            field: None,
            retry_after: None,
            allow: None,
            cause: None,
        }))
    }

    /// `408 REQUEST_TIMEOUT`: the body did not arrive in time.
    pub fn request_timeout() -> Self {
        Self(Box::new(Repr {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "REQUEST_TIMEOUT",
            message: Message::new("请求体发送超时", "The request body did not arrive in time"),
            field: None,
            retry_after: None,
            allow: None,
            cause: None,
        }))
    }

    /// `415 UNSUPPORTED_MEDIA_TYPE`: a file route sent a media type it does not take.
    pub fn unsupported_file_type(accepted: &[&str]) -> Self {
        let list = accepted.join(", ");
        Self(Box::new(Repr {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: Message::new(
                format!("文件类型须为 {list} 之一（Content-Type）"),
                format!("The file's Content-Type must be one of {list}"),
            ),
            field: None,
            retry_after: None,
            allow: None,
            cause: None,
        }))
    }

    /// `415 UNSUPPORTED_MEDIA_TYPE`: a JSON route sent another content type.
    pub fn unsupported_media_type() -> Self {
        Self(Box::new(Repr {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: Message::new(
                "请求体须为 JSON（Content-Type: application/json）",
                "The request body must be JSON (Content-Type: application/json)",
            ),
            field: None,
            retry_after: None,
            allow: None,
            cause: None,
        }))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The field or parameter the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// The cause to log, if any (internal and upstream failures).
    pub fn cause(&self) -> Option<&str> {
        self.0.cause.as_deref()
    }

    /// The response in the caller's language.
    pub fn into_response(self, language: Language) -> Response<Body> {
        let this = *self.0;
        let body = ErrorBody {
            code: this.code,
            message: this.message.text(language),
            details: this.field.as_deref().map(|field| Details { field }),
        };
        let response = json_response(this.status, &body);
        this.with_headers(response)
    }

    /// The response in OpenAI's error shape (`{"error": {"message", "type", "param",
    /// "code"}}`), for the OpenAI-compatible face, so SDKs raise their usual exceptions.
    /// The quota error is `429 insufficient_quota` there, as OpenAI answers it.
    pub fn into_openai_response(self, language: Language) -> Response<Body> {
        let mut this = *self.0;
        let (kind, code) = openai_kind_and_code(&this);
        if this.code == "QUOTA_EXCEEDED" {
            this.status = StatusCode::TOO_MANY_REQUESTS;
        }
        let body = OpenAiErrorBody {
            error: OpenAiError {
                message: this.message.text(language),
                kind,
                param: this.field.as_deref(),
                code,
            },
        };
        let response = json_response(this.status, &body);
        this.with_headers(response)
    }
}

impl Repr {
    /// The headers every error answer carries, whatever its body's shape.
    fn with_headers(self, mut response: Response<Body>) -> Response<Body> {
        let headers = response.headers_mut();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way: this connection is done.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

#[derive(Serialize)]
struct OpenAiErrorBody<'a> {
    error: OpenAiError<'a>,
}

#[derive(Serialize)]
struct OpenAiError<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: String,
}

/// OpenAI's `type` and `code` for one of our errors: the types OpenAI's SDKs know
/// (`invalid_request_error`, `rate_limit_error`, `insufficient_quota`, `server_error`),
/// and OpenAI's codes where it has one (`invalid_api_key`, `model_not_found`,
/// `rate_limit_exceeded`), else the contract's code in lower case.
fn openai_kind_and_code(error: &Repr) -> (&'static str, String) {
    let lower = error.code.to_ascii_lowercase();
    match error.code {
        "UNAUTHORIZED" => ("invalid_request_error", "invalid_api_key".to_owned()),
        "NOT_FOUND" if error.field.as_deref() == Some("model") => {
            ("invalid_request_error", "model_not_found".to_owned())
        }
        "QUOTA_EXCEEDED" => ("insufficient_quota", "insufficient_quota".to_owned()),
        "RATE_LIMIT" => ("rate_limit_error", "rate_limit_exceeded".to_owned()),
        _ if error.status.is_server_error() => ("server_error", lower),
        _ => ("invalid_request_error", lower),
    }
}
