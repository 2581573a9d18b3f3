//! [`MockLlm`]: a small OpenAI-compatible chat server on loopback that streams scripted
//! replies — slowly, with keep-alive comments, dying mid-stream, or refusing with an HTTP
//! error — and records every request it gets. Unscripted requests get an answer that
//! repeats the question.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One thing the mock does while streaming.
#[derive(Debug, Clone)]
pub enum Step {
    /// `data: {json}`.
    Data(Value),
    /// `: keep-alive` (a comment: no event).
    KeepAlive,
    /// Wait this long before the next frame (a slow model).
    Sleep(Duration),
    /// `data: [DONE]`.
    Done,
    /// Break the connection (an interrupted stream).
    Die,
    /// `data: ` followed by this text as it is (a corrupt chunk, say).
    Raw(String),
}

/// A scripted answer to one request.
#[derive(Debug, Clone)]
pub struct MockReply {
    status: u16,
    error_body: Value,
    steps: Vec<Step>,
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_763_800_000,
        "model": "mock-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null
    })
}

impl MockReply {
    /// Streams `reasoning` pieces (as DeepSeek's `reasoning_content`), then `content`
    /// pieces, waiting `pause` before each, then usage and `[DONE]`.
    pub fn answer(reasoning: &[&str], content: &[&str], pause: Duration) -> Self {
        Self::answer_with(reasoning, content, pause, "reasoning_content", true)
    }

    /// As [`answer`](Self::answer), with the reasoning field named `field` (`reasoning` for
    /// Ollama/vLLM) and usage sent or not.
    pub fn answer_with(
        reasoning: &[&str],
        content: &[&str],
        pause: Duration,
        field: &str,
        usage: bool,
    ) -> Self {
        let mut steps = vec![Step::Data(chunk(
            json!({"role": "assistant", "content": ""}),
            None,
        ))];
        for piece in reasoning {
            steps.push(Step::Sleep(pause));
            steps.push(Step::Data(chunk(json!({ field: piece }), None)));
        }
        for piece in content {
            steps.push(Step::Sleep(pause));
            steps.push(Step::Data(chunk(json!({"content": piece}), None)));
        }
        steps.push(Step::Data(chunk(json!({}), Some("stop"))));
        if usage {
            steps.push(Step::Data(json!({
                "id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": 120, "completion_tokens": 48, "total_tokens": 168,
                          "completion_tokens_details": {"reasoning_tokens": 12}}
            })));
        }
        steps.push(Step::Done);
        Self {
            status: 200,
            error_body: Value::Null,
            steps,
        }
    }

    /// Streams a call of the client's tool `name` as OpenAI does: a first piece with
    /// the call's `id` and name, the arguments in `pieces`, then finish reason
    /// `tool_calls`, usage and `[DONE]`.
    pub fn tool_call(id: &str, name: &str, pieces: &[&str]) -> Self {
        let call = |value: Value| json!({"tool_calls": [value]});
        let mut steps = vec![Step::Data(chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": id,
                "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        ))];
        for piece in pieces {
            steps.push(Step::Data(chunk(
                call(json!({"index": 0, "function": {"arguments": piece}})),
                None,
            )));
        }
        steps.push(Step::Data(chunk(json!({}), Some("tool_calls"))));
        steps.push(Step::Data(json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 90, "completion_tokens": 20, "total_tokens": 110}
        })));
        steps.push(Step::Done);
        Self::steps(steps)
    }

    /// Answers with an HTTP error and an OpenAI-style error body.
    pub fn error(status: u16) -> Self {
        Self {
            status,
            error_body: json!({"error": {"message": format!("mock error {status}"), "type": "mock", "code": status}}),
            steps: Vec::new(),
        }
    }

    /// Answers with an HTTP error and `body` as it is.
    pub fn error_with(status: u16, body: Value) -> Self {
        Self {
            status,
            error_body: body,
            steps: Vec::new(),
        }
    }

    /// Any steps at all (status 200).
    pub fn steps(steps: Vec<Step>) -> Self {
        Self {
            status: 200,
            error_body: Value::Null,
            steps,
        }
    }

    /// A content chunk step.
    pub fn content(text: &str) -> Step {
        Step::Data(chunk(json!({"content": text}), None))
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<MockReply>,
    fallback: Option<MockReply>,
    requests: Vec<Value>,
    /// Refuse prompts longer than this many characters (llama.cpp's context error).
    context_chars: Option<usize>,
}

/// The mock server; stops when dropped.
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockLlm {
    /// Starts on a free loopback port. Unscripted requests get an answer repeating the
    /// question.
    pub async fn start() -> Self {
        Self::start_on(
            "127.0.0.1:0"
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
        )
        .await
    }

    /// Starts on `addr` (the example server uses a fixed port).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = match TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(err) => panic!("mock LLM cannot bind {addr}: {err}"),
        };
        let addr = listener.local_addr().unwrap_or(addr);
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Small SSE writes must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The base URL to configure (`REFBOOK_LLM_BASE_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the answer to the next request.
    pub fn push(&self, reply: MockReply) {
        self.lock().script.push_back(reply);
    }

    /// The answer to every request nothing was queued for.
    pub fn set_fallback(&self, reply: MockReply) {
        self.lock().fallback = Some(reply);
    }

    /// Refuses, as llama.cpp does, every request whose messages hold more than `chars`
    /// characters of content (`None`: no limit): HTTP 400 with
    /// `exceed_context_size_error`. Refused requests are recorded too.
    pub fn set_context_limit(&self, chars: Option<usize>) {
        self.lock().context_chars = chars;
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Characters of content in a request's messages.
fn prompt_chars(request: &Value) -> usize {
    request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| m["content"].as_str().unwrap_or("").chars().count())
                .sum()
        })
        .unwrap_or(0)
}

type MockBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let path_ok = req.uri().path().ends_with("/chat/completions");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let echo = echo_reply(&request);
        let over_context = state
            .context_chars
            .is_some_and(|limit| prompt_chars(&request) > limit);
        state.requests.push(request);
        if over_context {
            return Ok(plain(
                400,
                json!({"error": {"code": 400, "type": "exceed_context_size_error",
                    "message": "the request exceeds the available context size, try increasing it",
                    "n_prompt_tokens": 1200, "n_ctx": 1024}}),
            ));
        }
        state
            .script
            .pop_front()
            .or_else(|| state.fallback.clone())
            .unwrap_or(echo)
    };
    if !path_ok {
        return Ok(plain(404, json!({"error": {"message": "not found"}})));
    }
    if reply.status != 200 {
        return Ok(plain(reply.status, reply.error_body));
    }
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
    tokio::spawn(async move {
        for step in reply.steps {
            let frame = match step {
                Step::Data(value) => format!("data: {value}\n\n"),
                Step::Raw(text) => format!("data: {text}\n\n"),
                Step::KeepAlive => ": keep-alive\n\n".to_owned(),
                Step::Done => "data: [DONE]\n\n".to_owned(),
                Step::Sleep(pause) => {
                    tokio::time::sleep(pause).await;
                    continue;
                }
                Step::Die => {
                    let _ = tx.send(Err(std::io::Error::other("mock died"))).await;
                    return;
                }
            };
            if tx.send(Ok(Frame::data(Bytes::from(frame)))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    Ok(response)
}

/// The most characters of the question the default answer repeats.
const ECHO_QUOTE_CHARS: usize = 200;

/// The default answer: it repeats the question, streamed a few characters at a time.
/// The tool a request demands a call of, as a model honouring `tool_choice` would call:
/// the first of its tools for `required`, or the named function.
fn demanded_tool(request: &Value) -> Option<String> {
    let name = match &request["tool_choice"] {
        Value::String(choice) if choice == "required" => {
            request["tools"].get(0)?.pointer("/function/name")
        }
        choice => choice.pointer("/function/name"),
    };
    name.and_then(Value::as_str).map(str::to_owned)
}

/// The answer to an unscripted request: a call of the tool it demands (its arguments
/// quoting the last message), or an echo of the last message.
fn echo_reply(request: &Value) -> MockReply {
    let question = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    if let Some(tool) = demanded_tool(request) {
        let quoted = serde_json::to_string(question).unwrap_or_default();
        return MockReply::tool_call("call_mock", &tool, &["{\"question\": ", &quoted, "}"]);
    }
    // A long question is quoted in part, so the echo stays a few seconds long at most.
    let mut quoted: String = question.chars().take(ECHO_QUOTE_CHARS).collect();
    if quoted.len() < question.len() {
        quoted.push('…');
    }
    let answer = format!("（模拟模型）你问的是：「{quoted}」。这是一个用于试用的模拟回答，配置 REFBOOK_LLM_API_KEY 后即可与真实模型对话。");
    let chars: Vec<char> = answer.chars().collect();
    let pieces: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    MockReply::answer(&["想一想这个问题。"], &refs, Duration::from_millis(30))
}

fn plain(status: u16, body: Value) -> Response<MockBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
