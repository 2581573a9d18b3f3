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

use crate::body::Body;
use crate::metrics::StreamGuard;

/// Writes a reply's events as the contract's chunk objects (an OpenAI
/// `chat.completion.chunk` with `conversation_id` and `message_id`). What every chunk of
/// the reply shares — id, object, created, model, ids — is serialised once, when the
/// stream starts; each event then only escapes its own text into the frame being built.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    /// `{"id":…,…,"choices":[{"index":0,"delta":`
    prefix: String,
}

/// Appends `value` as JSON (into a `Vec` this cannot fail).
fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
}

impl ChunkEncoder {
    /// The encoder of `reply`'s chunks.
    pub fn new(reply: &Reply) -> Self {
        let mut prefix = Vec::with_capacity(192);
        prefix.extend_from_slice(b"{\"id\":\"chatcmpl-");
        prefix.extend_from_slice(reply.message_id().to_string().as_bytes());
        prefix.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
        push_json(&mut prefix, &reply.created());
        prefix.extend_from_slice(b",\"model\":");
        push_json(&mut prefix, reply.model());
        prefix.extend_from_slice(b",\"conversation_id\":");
        push_json(&mut prefix, &reply.conversation_id());
        prefix.extend_from_slice(b",\"message_id\":");
        push_json(&mut prefix, &reply.message_id());
        prefix.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        Self {
            prefix: String::from_utf8_lossy(&prefix).into_owned(),
        }
    }

    /// Appends `event`'s JSON object to `out`; `position`, when given, as a last
    /// `"position"` field (NDJSON).
    pub fn write(&self, event: &ReplyEvent, position: Option<usize>, out: &mut Vec<u8>) {
        let delta = |out: &mut Vec<u8>, key: &str, text: &str| {
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(b"{\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            push_json(out, text);
            out.extend_from_slice(b"},\"finish_reason\":null}]");
        };
        match event {
            ReplyEvent::Start => {
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(
                    b"{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]",
                );
            }
            ReplyEvent::Sources(sources) => {
                // Before the first content, with an empty delta: clients that read only
                // `delta.content` show nothing new.
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(b"{},\"finish_reason\":null}],\"sources\":");
                push_json(out, &**sources);
            }
            ReplyEvent::Reasoning(text) => delta(out, "reasoning_content", text),
            ReplyEvent::Content(text) => delta(out, "content", text),
            ReplyEvent::Finish {
                reason,
                status,
                usage,
                citations,
            } => {
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(b"{},\"finish_reason\":");
                push_json(out, reason.as_str());
                out.extend_from_slice(b"}],\"usage\":");
                push_json(out, usage);
                out.extend_from_slice(b",\"status\":");
                push_json(out, status);
                if let Some(citations) = citations {
                    out.extend_from_slice(b",\"citations\":");
                    push_json(out, &**citations);
                }
            }
            ReplyEvent::Error { code, message } => {
                out.extend_from_slice(b"{\"error\":{\"code\":");
                push_json(out, code);
                out.extend_from_slice(b",\"message\":");
                push_json(out, &**message);
                out.push(b'}');
            }
        }
        if let Some(position) = position {
            out.extend_from_slice(b",\"position\":");
            out.extend_from_slice(position.to_string().as_bytes());
        }
        out.push(b'}');
    }

    /// One event as an SSE block (`id: N\ndata: {json}\n\n`), appended to `out`.
    pub fn write_sse(&self, position: usize, event: &ReplyEvent, out: &mut Vec<u8>) {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(position.to_string().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        self.write(event, None, out);
        out.extend_from_slice(b"\n\n");
    }
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
    /// Appends one event's bytes to `out`.
    fn event(self, encoder: &ChunkEncoder, position: usize, event: &ReplyEvent, out: &mut Vec<u8>) {
        match self {
            Self::Sse => encoder.write_sse(position, event, out),
            Self::Ndjson => {
                encoder.write(event, Some(position), out);
                out.push(b'\n');
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
    _open: StreamGuard,
    listener: ReplyListener,
    encoder: ChunkEncoder,
    keep_alive: Duration,
    /// The one keep-alive timer of this stream, pushed back whenever something is sent.
    silence: std::pin::Pin<Box<tokio::time::Sleep>>,
    format: Format,
    ended: bool,
}

/// A `200` SSE response reading `listener` to the end, with a keep-alive comment after
/// each `keep_alive` of silence; `open` counts it among the open streams until it ends.
pub fn response(
    listener: ReplyListener,
    keep_alive: Duration,
    open: StreamGuard,
) -> Response<Body> {
    response_as(Format::Sse, listener, keep_alive, open)
}

/// A `200` streaming response in `format` reading `listener` to the end, with a
/// keep-alive after each `keep_alive` of silence. Every event ready at once goes out in
/// one frame (one write). `open` counts it among the open streams until it ends.
pub fn response_as(
    format: Format,
    listener: ReplyListener,
    keep_alive: Duration,
    open: StreamGuard,
) -> Response<Body> {
    let state = Streaming {
        _open: open,
        encoder: ChunkEncoder::new(listener.reply()),
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
                    let mut frame = Vec::with_capacity(256 * events.len());
                    for (position, event) in &events {
                        state.format.event(&state.encoder, *position, event, &mut frame);
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
    streaming_response(
        StreamBody::new(frames).boxed_unsync(),
        format.content_type(),
    )
}

/// A `200` streaming `body` as `content_type`, uncached and unbuffered by proxies.
pub fn streaming_response(body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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

#[cfg(test)]
mod tests {
    use super::*;
    use refbook_core::chat::{FinishReason, MessageStatus, TokenUsage};
    use refbook_core::domain::{ConversationId, MessageId};
    use serde_json::{json, Value};

    fn parsed(encoder: &ChunkEncoder, event: &ReplyEvent, position: Option<usize>) -> Value {
        let mut out = Vec::new();
        encoder.write(event, position, &mut out);
        serde_json::from_slice(&out).expect("one JSON object")
    }

    #[test]
    fn chunks_are_the_contract_objects_with_text_escaped() {
        let reply = refbook_core::testing::sample_reply(
            ConversationId::new(7),
            MessageId::new(42),
            "deep\"seek",
        );
        let encoder = ChunkEncoder::new(&reply);
        let chunk = |delta: Value, finish: Value| {
            json!({
                "id": "chatcmpl-42", "object": "chat.completion.chunk", "created": reply.created(),
                "model": "deep\"seek", "conversation_id": 7, "message_id": 42,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })
        };
        assert_eq!(
            parsed(&encoder, &ReplyEvent::Start, None),
            chunk(json!({"role": "assistant", "content": ""}), Value::Null)
        );
        let tricky = "引号\"、反斜杠\\、换行\n和 </script>";
        assert_eq!(
            parsed(&encoder, &ReplyEvent::Content(tricky.into()), None),
            chunk(json!({"content": tricky}), Value::Null)
        );
        assert_eq!(
            parsed(&encoder, &ReplyEvent::Reasoning("想".into()), Some(9)),
            {
                let mut v = chunk(json!({"reasoning_content": "想"}), Value::Null);
                v["position"] = json!(9);
                v
            }
        );
        let finish = ReplyEvent::Finish {
            reason: FinishReason::Length,
            status: MessageStatus::Partial,
            usage: TokenUsage::new(3, 4),
            citations: None,
        };
        let mut expected = chunk(json!({}), json!("length"));
        expected["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        expected["status"] = json!("partial");
        assert_eq!(parsed(&encoder, &finish, None), expected);
        let error = ReplyEvent::Error {
            code: "MODEL_ERROR",
            message: "坏了".into(),
        };
        assert_eq!(
            parsed(&encoder, &error, Some(12)),
            json!({"error": {"code": "MODEL_ERROR", "message": "坏了"}, "position": 12})
        );
        let mut sse = Vec::new();
        encoder.write_sse(5, &ReplyEvent::Content("a".into()), &mut sse);
        let text = String::from_utf8(sse).unwrap();
        assert!(
            text.starts_with("id: 5\ndata: {") && text.ends_with("}\n\n"),
            "{text}"
        );
    }
}
