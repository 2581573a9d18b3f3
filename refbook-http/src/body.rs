//! Response bodies out: the [`Body`] type and JSON answers (request bodies are read in
//! [`request_body`](crate::request_body)).

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Serialize;

/// The body type of every response (`Send`, not `Sync`: a streamed body owns futures
/// that hyper only ever polls from one task).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// `status` with `value` as a JSON body.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let (status, bytes) = match serde_json::to_vec(value) {
        Ok(bytes) => (status, bytes),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"code":"SERVER_ERROR","message":"response encoding failed"}"#.to_vec(),
        ),
    };
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `200 OK` with `value` as JSON.
pub fn ok_json<T: Serialize>(value: &T) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

/// `{"ok": true}`.
pub fn ok_true() -> Response<Body> {
    ok_json(&serde_json::json!({ "ok": true }))
}
