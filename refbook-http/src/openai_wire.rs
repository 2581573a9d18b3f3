//! The OpenAI-compatible face's wire format: `chat.completion` objects, and the
//! `chat.completion.chunk` SSE stream (`data:` lines only, `: keep-alive` comments while
//! the model is silent, usage in a last chunk with no choices when asked for, errors as
//! `data: {"error": …}`, then `data: [DONE]`).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use refbook_core::chat::{
    citations_in, CompletionEvent, CompletionStream, FinishReason, Source, TokenUsage,
    ToolCallDelta,
};
use refbook_core::{Error, Language};
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::body::Body;
use crate::frame_pump::{event_stream, FrameWriter, Frames};
use crate::sse::DONE;

/// What every object of one completion shares.
#[derive(Debug, Clone)]
pub struct CompletionMeta {
    /// `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The model's canonical name (`9787536692930@author`).
    pub model: String,
}

impl CompletionMeta {
    /// A new completion's id and time for `model`.
    pub fn new(model: String) -> Self {
        Self {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: refbook_core::timestamp::Timestamp::now().unix_seconds(),
            model,
        }
    }
}

/// A finish reason OpenAI's SDKs know (`stop`, `length`, `content_filter`,
/// `tool_calls`); a completion ends no other way, and anything else would be reported
/// as `stop`.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
        _ => "stop",
    }
}

/// A tool call the model made, gathered from its pieces.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GatheredCall {
    /// The call's index among the answer's calls.
    pub index: u32,
    /// `call_…` (made up when the model sent none).
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments, JSON text.
    pub arguments: String,
}

impl GatheredCall {
    /// The call in a `chat.completion` message's `tool_calls`.
    fn to_json(&self) -> Value {
        json!({"id": self.id, "type": "function",
               "function": {"name": self.name, "arguments": self.arguments}})
    }
}

/// Adds a piece of a tool call to the calls gathered so far.
fn add_call_piece(calls: &mut Vec<GatheredCall>, piece: ToolCallDelta) {
    let at = match calls.iter().position(|c| c.index == piece.index) {
        Some(at) => at,
        None => {
            calls.push(GatheredCall {
                index: piece.index,
                ..GatheredCall::default()
            });
            calls.len() - 1
        }
    };
    let call = &mut calls[at];
    if let Some(id) = piece.id {
        call.id = id;
    }
    if let Some(name) = piece.name {
        call.name.push_str(&name);
    }
    call.arguments.push_str(&piece.arguments);
}

/// A streamed piece of a tool call as OpenAI's chunks carry it in `delta.tool_calls`.
fn call_piece_json(piece: &ToolCallDelta) -> Value {
    let mut function = json!({"arguments": piece.arguments});
    if let Some(name) = &piece.name {
        function["name"] = json!(name);
    }
    let mut call = json!({"index": piece.index, "function": function});
    if let Some(id) = &piece.id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    call
}

/// The error object of a model failure, in the request's language.
pub fn model_error(err: &Error, language: Language) -> Value {
    let code = crate::api_error::status_and_code(err.kind()).1;
    json!({"error": {
        "message": err.message().text(language),
        "type": "server_error",
        "param": null,
        "code": code.to_ascii_lowercase(),
    }})
}

/// A whole completion read: its text, reasoning, finish reason (as OpenAI names it) and
/// usage.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The answer.
    pub content: String,
    /// The reasoning, if the model sent any.
    pub reasoning: String,
    /// The tools the model called (only where the client's tools passed through).
    pub tool_calls: Vec<GatheredCall>,
    /// `stop`, `length`, `content_filter` or `tool_calls`.
    pub finish: &'static str,
    /// The tokens used.
    pub usage: TokenUsage,
}

/// Reads a whole completion (and records its usage). A model that fails answers the
/// error instead (nothing was sent yet).
pub async fn gather(mut events: CompletionStream) -> Result<Gathered, ApiError> {
    let mut gathered = Gathered {
        finish: "stop",
        ..Gathered::default()
    };
    while let Some(event) = events.next().await {
        match event? {
            CompletionEvent::Content(text) => gathered.content.push_str(&text),
            CompletionEvent::Reasoning(text) => gathered.reasoning.push_str(&text),
            CompletionEvent::ToolCall(piece) => add_call_piece(&mut gathered.tool_calls, piece),
            CompletionEvent::Finish(reason) => gathered.finish = finish_reason(reason),
            CompletionEvent::Usage(counted) => gathered.usage = counted,
        }
    }
    events.record_usage().await;
    Ok(gathered)
}

/// Reads a whole completion and answers it as one `chat.completion` object. A model
/// that fails answers the error instead (nothing was sent yet).
pub async fn collect(
    meta: &CompletionMeta,
    events: CompletionStream,
    sources: &[Source],
) -> Result<Value, ApiError> {
    let Gathered {
        content,
        reasoning,
        mut tool_calls,
        finish,
        usage,
    } = gather(events).await?;
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !tool_calls.is_empty() {
        // As OpenAI answers a call: no content unless the model said something too.
        if content.is_empty() {
            message["content"] = Value::Null;
        }
        for call in tool_calls.iter_mut().filter(|c| c.id.is_empty()) {
            call.id = format!("call_{}", uuid::Uuid::new_v4().simple());
        }
        message["tool_calls"] = tool_calls.iter().map(GatheredCall::to_json).collect();
    }
    let citations = citations_in(&content, sources.len());
    let mut answer = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    });
    if !sources.is_empty() {
        answer["sources"] = json!(sources);
        answer["citations"] = json!(citations);
    }
    Ok(answer)
}

/// How one streamed completion is written.
struct Chunks {
    meta: CompletionMeta,
    include_usage: bool,
}

impl Chunks {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        data_line(&self.chunk_value(delta, finish))
    }

    fn chunk_value(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut value = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            value["usage"] = Value::Null;
        }
        value
    }

    fn usage(&self, usage: &TokenUsage) -> Bytes {
        data_line(&json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "choices": [],
            "usage": usage,
        }))
    }
}

fn data_line(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

struct Streaming {
    chunks: Chunks,
    /// How many sources the model was given (0: none), and the answer so far when there
    /// are some (for the citations on the last chunk).
    sources: usize,
    content: String,
    language: Language,
    frames: Frames,
}

impl FrameWriter for Streaming {
    fn frames(&mut self) -> &mut Frames {
        &mut self.frames
    }

    async fn write(
        &mut self,
        event: Option<Result<CompletionEvent, Error>>,
        events: &mut CompletionStream,
    ) {
        match event {
            Some(Ok(CompletionEvent::Content(text))) => {
                if self.sources > 0 {
                    self.content.push_str(&text);
                }
                let chunk = self.chunks.chunk(json!({"content": text}), None);
                self.frames.pending.push_back(chunk);
            }
            Some(Ok(CompletionEvent::Reasoning(text))) => {
                let chunk = self.chunks.chunk(json!({"reasoning_content": text}), None);
                self.frames.pending.push_back(chunk);
            }
            Some(Ok(CompletionEvent::ToolCall(piece))) => {
                let delta = json!({"tool_calls": [call_piece_json(&piece)]});
                self.frames
                    .pending
                    .push_back(self.chunks.chunk(delta, None));
            }
            Some(Ok(CompletionEvent::Finish(reason))) => {
                let mut chunk = self
                    .chunks
                    .chunk_value(json!({}), Some(finish_reason(reason)));
                if self.sources > 0 {
                    chunk["citations"] = json!(citations_in(&self.content, self.sources));
                }
                self.frames.pending.push_back(data_line(&chunk));
            }
            Some(Ok(CompletionEvent::Usage(usage))) => {
                if self.chunks.include_usage {
                    self.frames.pending.push_back(self.chunks.usage(&usage));
                }
            }
            Some(Err(err)) => {
                self.frames
                    .pending
                    .push_back(data_line(&model_error(&err, self.language)));
            }
            None => {
                // The tokens count before the stream says it is done.
                events.record_usage().await;
                self.frames.pending.push_back(Bytes::from_static(DONE));
                self.frames.ended = true;
            }
        }
    }
}

/// A `200` SSE response streaming `events` as `chat.completion.chunk`s: a first chunk
/// with the role, one per piece of text or reasoning, the finish chunk, the usage chunk
/// when `include_usage`, then `[DONE]`; `open` counts it among the open streams until it
/// ends.
pub fn stream_response(
    meta: CompletionMeta,
    events: CompletionStream,
    sources: &[Source],
    include_usage: bool,
    language: Language,
    keep_alive: Duration,
    open: crate::metrics::StreamGuard,
) -> Response<Body> {
    let chunks = Chunks {
        meta,
        include_usage,
    };
    let mut pending =
        VecDeque::from([chunks.chunk(json!({"role": "assistant", "content": ""}), None)]);
    if !sources.is_empty() {
        // Before the first content, with an empty delta.
        let mut with_sources = chunks.chunk_value(json!({}), None);
        with_sources["sources"] = json!(sources);
        pending.push_back(data_line(&with_sources));
    }
    let state = Streaming {
        chunks,
        sources: sources.len(),
        content: String::new(),
        language,
        frames: Frames {
            pending,
            ended: false,
        },
    };
    event_stream(state, events, keep_alive, open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_are_ones_sdks_know() {
        assert_eq!(finish_reason(FinishReason::from_model("stop")), "stop");
        assert_eq!(finish_reason(FinishReason::from_model("length")), "length");
        assert_eq!(
            finish_reason(FinishReason::from_model("content_filter")),
            "content_filter"
        );
        assert_eq!(finish_reason(FinishReason::from_model("eos")), "stop");
    }

    #[test]
    fn chunks_carry_null_usage_only_when_usage_is_asked_for() {
        let meta = CompletionMeta::new("9787536692930".into());
        let with = Chunks {
            meta: meta.clone(),
            include_usage: true,
        };
        let line = with.chunk(json!({"content": "a"}), None);
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with("data: {") && text.ends_with("}\n\n"));
        let value: Value = serde_json::from_str(&text[6..]).unwrap();
        assert_eq!(value["usage"], Value::Null);
        assert!(value.as_object().unwrap().contains_key("usage"));
        let without = Chunks {
            meta,
            include_usage: false,
        };
        let line = without.chunk(json!({"content": "a"}), None);
        let value: Value = serde_json::from_str(&std::str::from_utf8(&line).unwrap()[6..]).unwrap();
        assert!(!value.as_object().unwrap().contains_key("usage"));
    }
}
