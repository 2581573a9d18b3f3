//! An OpenAI-compatible chat completions client with streaming.
//!
//! `POST {base}/chat/completions` (falling back once to `{base}/v1/chat/completions` when
//! the base lacks `/v1` and the first answers 404), `stream: true` with usage, SSE decoded
//! by `eventsource-stream`. Reasoning arrives as `delta.reasoning_content` (DeepSeek) or
//! `delta.reasoning` (Ollama, vLLM). Time limits count real data only: keep-alive comments
//! produce no events, so they do not reset them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::tools::{tool_call_pieces, ToolCallJson};
use super::{ChatModel, ChatRequest, ModelError, ModelEvent, ModelStream, PromptMessage};
use crate::config::Secret;
use crate::domain::{FinishReason, Role, TokenUsage};

/// The time limits of one reply.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until the response headers.
    pub connect: Duration,
    /// Until the first data event (providers may send keep-alives for minutes).
    pub first_data: Duration,
    /// Between two data events.
    pub idle: Duration,
}

/// A client of one OpenAI-compatible server and model.
pub struct OpenAiCompatible {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    model: String,
    timeouts: Timeouts,
    /// Set once `{base}/chat/completions` answered 404 and `/v1/…` worked.
    use_v1: AtomicBool,
    /// Whether an unfinished answer is continued by prefix (else by instruction).
    prefix_continuation: bool,
    /// Whether a client's tools and output format are passed to the API.
    pass_tools: bool,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<UsageJson>,
    #[serde(default)]
    error: Option<ErrorJson>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<ToolCallJson>>,
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

#[derive(Deserialize)]
struct ErrorJson {
    message: Option<String>,
    code: Option<serde_json::Value>,
}

impl OpenAiCompatible {
    /// A client for `model` at `base_url`, with `api_key` as its bearer token (none for
    /// servers that take no key).
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        api_key: Option<Secret>,
        model: &str,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            timeouts,
            use_v1: AtomicBool::new(false),
            prefix_continuation: false,
            pass_tools: false,
        }
    }

    /// Passes a client's `tools`, `tool_choice`, `parallel_tool_calls`,
    /// `response_format` and tool turns to the API as sent, and streams its tool calls
    /// back; off, requests that demand them are refused before the API is asked.
    #[must_use]
    pub fn with_tool_passthrough(mut self, on: bool) -> Self {
        self.pass_tools = on;
        self
    }

    /// Continues an unfinished answer (a request whose last message is the assistant's)
    /// by prefix — the answer sent as the last message with `"prefix": true`, as
    /// DeepSeek's beta API and llama.cpp's server take it — rather than by instruction.
    #[must_use]
    pub fn with_prefix_continuation(mut self, prefix: bool) -> Self {
        self.prefix_continuation = prefix;
        self
    }

    fn url(&self, v1: bool) -> String {
        if v1 {
            format!("{}/v1/chat/completions", self.base_url)
        } else {
            format!("{}/chat/completions", self.base_url)
        }
    }

    async fn send(
        &self,
        body: &serde_json::Value,
        v1: bool,
    ) -> Result<reqwest::Response, ModelError> {
        let mut request = self.client.post(self.url(v1));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let request = request
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body)
            .send();
        match tokio::time::timeout(self.timeouts.connect, request).await {
            Err(_) => Err(ModelError::Timeout("connect")),
            Ok(Err(err)) if err.is_timeout() => Err(ModelError::Timeout("connect")),
            Ok(Err(err)) => Err(ModelError::Network(err.without_url().to_string())),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

async fn refusal(response: reqwest::Response) -> ModelError {
    let status = response.status().as_u16();
    match status {
        401 | 403 => ModelError::Unauthorized,
        402 => ModelError::InsufficientBalance,
        429 => ModelError::RateLimited,
        _ => {
            let body = crate::upstream::read_limited(response, crate::upstream::MAX_SMALL_BODY)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            if status == 400 && is_context_error(&body) {
                return ModelError::ContextExceeded;
            }
            ModelError::Status {
                status,
                detail: body.chars().take(300).collect(),
            }
        }
    }
}

/// The longest SSE line taken from a model (a reply's text arrives in many small lines).
const MAX_LINE: usize = 1024 * 1024;

/// Why the model's byte stream was cut off.
#[derive(Debug, thiserror::Error)]
enum StreamBytesError {
    #[error("{0}")]
    Transport(String),
    #[error("the model sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

/// The model's bytes, failing once more than [`MAX_LINE`] bytes arrive without a line
/// break (the SSE decoder would hold them all).
fn guard_lines(
    bytes: impl futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
) -> impl futures::Stream<Item = Result<bytes::Bytes, StreamBytesError>> + Send + 'static {
    let mut since_break = 0usize;
    bytes.map(move |item| {
        let chunk = item.map_err(|e| StreamBytesError::Transport(e.without_url().to_string()))?;
        since_break = match chunk.iter().rposition(|b| *b == b'\n') {
            Some(at) => chunk.len() - at - 1,
            None => since_break + chunk.len(),
        };
        if since_break > MAX_LINE {
            return Err(StreamBytesError::LineTooLong);
        }
        Ok(chunk)
    })
}

/// Whether a 400 body says the prompt is over the context (llama.cpp, OpenAI, vLLM,
/// DeepSeek word it differently).
fn is_context_error(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    [
        "exceed_context_size",
        "context_length_exceeded",
        "maximum context length",
        "context window",
        "exceeds the available context",
    ]
    .iter()
    .any(|needle| body.contains(needle))
}

/// Turns one SSE `data` payload into events; `Ok(None)` at `[DONE]`.
fn parse_data(data: &str) -> Result<Option<Vec<ModelEvent>>, ModelError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(None);
    }
    let Ok(chunk) = serde_json::from_str::<Chunk>(data) else {
        tracing::warn!(
            bytes = data.len(),
            "the LLM stream sent an unreadable chunk; ending the reply"
        );
        return Err(ModelError::Corrupt);
    };
    if let Some(error) = chunk.error {
        let code = error.code.map(|c| c.to_string()).unwrap_or_default();
        return Err(ModelError::Stream(format!(
            "{} {code}",
            error.message.unwrap_or_else(|| "error".to_owned())
        )));
    }
    let mut events = Vec::new();
    for choice in chunk.choices.unwrap_or_default() {
        if let Some(delta) = choice.delta {
            if let Some(reasoning) = delta
                .reasoning_content
                .or(delta.reasoning)
                .filter(|r| !r.is_empty())
            {
                events.push(ModelEvent::Reasoning(reasoning));
            }
            if let Some(content) = delta.content.filter(|c| !c.is_empty()) {
                events.push(ModelEvent::Content(content));
            }
            events.extend(
                tool_call_pieces(delta.tool_calls.unwrap_or_default()).map(ModelEvent::ToolCall),
            );
        }
        if let Some(reason) = choice.finish_reason {
            events.push(ModelEvent::Finish(FinishReason::from_model(&reason)));
        }
    }
    if let Some(usage) = chunk.usage {
        events.push(ModelEvent::Usage(TokenUsage::new(
            usage.prompt_tokens,
            usage.completion_tokens,
        )));
    }
    Ok(Some(events))
}

struct Reading {
    events: BoxStream<'static, Result<eventsource_stream::Event, String>>,
    pending: VecDeque<ModelEvent>,
    timeouts: Timeouts,
    seen_data: bool,
    finished: bool,
    done: bool,
}

async fn next_event(mut state: Reading) -> Option<(Result<ModelEvent, ModelError>, Reading)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((Ok(event), state));
        }
        if state.done {
            return None;
        }
        let (limit, stage) = if state.seen_data {
            (state.timeouts.idle, "the next data")
        } else {
            (state.timeouts.first_data, "the first data")
        };
        let next = tokio::time::timeout(limit, state.events.next()).await;
        let failure = match next {
            Err(_) => ModelError::Timeout(stage),
            Ok(None) if state.finished => {
                // Some servers end after finish_reason without `[DONE]`: that is complete.
                return None;
            }
            Ok(None) => ModelError::Stream("the stream ended before the reply finished".to_owned()),
            Ok(Some(Err(err))) => ModelError::Stream(err),
            Ok(Some(Ok(event))) => {
                state.seen_data = true;
                match parse_data(&event.data) {
                    Ok(Some(events)) => {
                        state.finished |= events.iter().any(|e| matches!(e, ModelEvent::Finish(_)));
                        state.pending.extend(events);
                        continue;
                    }
                    Ok(None) => {
                        state.done = true;
                        continue;
                    }
                    Err(err) => err,
                }
            }
        };
        state.done = true;
        return Some((Err(failure), state));
    }
}

/// What follows an unfinished answer when the API is asked by instruction to go on.
const CONTINUE_INSTRUCTION: &str =
    "请从你上一条回答停下的地方继续写，不要重复已经写过的内容，也不要加任何开场白。\
     (Continue your previous answer exactly where it stopped, without repeating any of it.)";

/// The request's `messages`: each as role and content; a last assistant message (an
/// unfinished answer to continue) marked `"prefix": true`, or followed by the
/// instruction to continue it.
fn wire_messages(messages: &[PromptMessage], prefix: bool) -> Vec<serde_json::Value> {
    let mut wire: Vec<_> = messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    if messages.last().is_some_and(|m| m.role == Role::Assistant) {
        if prefix {
            if let Some(last) = wire.last_mut() {
                last["prefix"] = json!(true);
            }
        } else {
            wire.push(json!({"role": "user", "content": CONTINUE_INSTRUCTION}));
        }
    }
    wire
}

#[async_trait]
impl ChatModel for OpenAiCompatible {
    fn model_name(&self) -> &str {
        &self.model
    }

    fn takes_tools(&self) -> bool {
        self.pass_tools
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError> {
        let mut messages = wire_messages(&request.messages, self.prefix_continuation);
        let mut body = json!({
            "model": self.model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": request.user,
        });
        if let Some(tools) = request.tools.as_ref().filter(|_| self.pass_tools) {
            tools.apply(&mut body, &mut messages);
        }
        body["messages"] = json!(messages);
        if let Some(max_tokens) = request.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = request.sampling.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = request.sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if !request.sampling.stop.is_empty() {
            body["stop"] = json!(request.sampling.stop);
        }
        let mut v1 = self.use_v1.load(Ordering::Relaxed);
        let mut response = self.send(&body, v1).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND
            && !v1
            && !self.base_url.ends_with("/v1")
        {
            v1 = true;
            response = self.send(&body, v1).await?;
            if response.status().is_success() {
                self.use_v1.store(true, Ordering::Relaxed);
            }
        }
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let events = guard_lines(response.bytes_stream())
            .eventsource()
            .map(|item| item.map_err(|e| e.to_string()))
            .boxed();
        let state = Reading {
            events,
            pending: VecDeque::new(),
            timeouts: self.timeouts,
            seen_data: false,
            finished: false,
            done: false,
        };
        Ok(Box::pin(stream::unfold(state, next_event)))
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
