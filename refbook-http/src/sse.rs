//! The SSE stream exactly as the contract shows it: an `id:` line and one `data:` line per
//! event (an OpenAI `chat.completion.chunk` with `conversation_id` and `message_id`), no
//! `event:` lines, `: keep-alive` after 15 s of silence, errors as `data: {"error": …}`,
//! and always `data: [DONE]` and a blank line at the end. Events are whole lines, so a
//! body read in one piece parses the same as one read as it arrives.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http::{header, HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use refbook_core::chat::{Reply, ReplyEvent, ReplyListener};
use serde_json::{json, Value};

use crate::body::Body;

/// The `data` of one event.
pub fn event_data(reply: &Reply, event: &ReplyEvent) -> Value {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": format!("chatcmpl-{}", reply.message_id),
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "conversation_id": reply.conversation_id,
            "message_id": reply.message_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    match event {
        ReplyEvent::Start => chunk(json!({"role": "assistant", "content": ""}), None),
        ReplyEvent::Reasoning(text) => chunk(json!({"reasoning_content": &**text}), None),
        ReplyEvent::Content(text) => chunk(json!({"content": &**text}), None),
        ReplyEvent::Finish {
            reason,
            status,
            usage,
        } => {
            let mut value = chunk(json!({}), Some(reason.as_str()));
            value["usage"] = json!(usage);
            value["status"] = json!(status);
            value
        }
        ReplyEvent::Error { code, message } => {
            json!({"error": {"code": code, "message": &**message}})
        }
    }
}

/// One event's bytes: `id: N\ndata: {json}\n\n`.
pub fn encode(position: usize, data: &Value) -> Bytes {
    Bytes::from(format!("id: {position}\ndata: {data}\n\n"))
}

/// The closing `data: [DONE]`.
pub const DONE: &[u8] = b"data: [DONE]\n\n";
/// The keep-alive comment.
pub const KEEP_ALIVE_LINE: &[u8] = b": keep-alive\n\n";

/// How a reply's events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Server-Sent Events (`text/event-stream`): `id:` + `data:` per event, `[DONE]`.
    Sse,
    /// Newline-delimited JSON (`application/x-ndjson`): one object a line with its
    /// `"position"`, `{"keep_alive": true}` while nothing arrives, `{"done": true}` last.
    Ndjson,
}

impl Format {
    /// One event's bytes.
    fn event(self, position: usize, mut data: Value) -> Bytes {
        match self {
            Self::Sse => encode(position, &data),
            Self::Ndjson => {
                data["position"] = Value::from(position);
                Bytes::from(format!("{data}\n"))
            }
        }
    }

    fn done(self) -> Bytes {
        match self {
            Self::Sse => Bytes::from_static(DONE),
            Self::Ndjson => Bytes::from_static(b"{\"done\":true}\n"),
        }
    }

    fn keep_alive(self) -> Bytes {
        match self {
            Self::Sse => Bytes::from_static(KEEP_ALIVE_LINE),
            Self::Ndjson => Bytes::from_static(b"{\"keep_alive\":true}\n"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Sse => "text/event-stream; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The streaming format a request asks for, if any: `Accept: application/x-ndjson`,
    /// else SSE for `Accept: text/event-stream` or `stream: true`.
    pub fn wanted(headers: &http::HeaderMap, stream_flag: Option<bool>) -> Option<Self> {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("application/x-ndjson") {
            Some(Self::Ndjson)
        } else if stream_flag == Some(true) || accept.contains("text/event-stream") {
            Some(Self::Sse)
        } else {
            None
        }
    }
}

struct Streaming {
    /// Counts this stream as open until the body is dropped (finished or disconnected).
    _open: crate::metrics::StreamGuard,
    listener: ReplyListener,
    keep_alive: Duration,
    /// The one keep-alive timer of this stream, pushed back whenever something is sent.
    silence: std::pin::Pin<Box<tokio::time::Sleep>>,
    format: Format,
    ended: bool,
}

/// A `200` SSE response reading `listener` to the end, with a keep-alive comment after
/// each `keep_alive` of silence.
pub fn response(listener: ReplyListener, keep_alive: Duration) -> Response<Body> {
    response_as(Format::Sse, listener, keep_alive)
}

/// A `200` streaming response in `format` reading `listener` to the end, with a
/// keep-alive after each `keep_alive` of silence. Every event ready at once goes out in
/// one frame (one write).
pub fn response_as(
    format: Format,
    listener: ReplyListener,
    keep_alive: Duration,
) -> Response<Body> {
    let state = Streaming {
        _open: crate::metrics::global().stream_opened(),
        listener,
        keep_alive,
        silence: Box::pin(tokio::time::sleep(keep_alive)),
        format,
        ended: false,
    };
    let frames = stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        let bytes = tokio::select! {
            next = state.listener.next() => match next {
                Some(events) => {
                    let reply = state.listener.reply().clone();
                    let mut frame = Vec::new();
                    for (position, event) in events {
                        let data = event_data(&reply, &event);
                        frame.extend_from_slice(&state.format.event(position, data));
                    }
                    Bytes::from(frame)
                }
                None => {
                    state.ended = true;
                    state.format.done()
                }
            },
            () = &mut state.silence => state.format.keep_alive(),
        };
        let deadline = tokio::time::Instant::now() + state.keep_alive;
        state.silence.as_mut().reset(deadline);
        Some((Ok::<_, Infallible>(Frame::data(bytes)), state))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The position to resume after: `Last-Event-ID`, else `?cursor=`, else 0.
pub fn resume_position(
    headers: &http::HeaderMap,
    cursor: Option<&str>,
) -> Result<usize, crate::api_error::ApiError> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    parse_position(last_event_id.or(cursor))
}

/// A position as sent (`None` or empty: 0); anything but a whole number is `400`.
pub fn parse_position(raw: Option<&str>) -> Result<usize, crate::api_error::ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            crate::api_error::ApiError::invalid(
                Some("cursor"),
                "cursor 须为非负整数",
                "cursor must be a non-negative whole number",
            )
        }),
    }
}
