//! [`FastMock`]: the cheapest OpenAI-compatible streaming server we can write, for load
//! runs — every request gets the same pre-rendered SSE body (a role chunk, `pieces`
//! content chunks, a finish chunk with usage, `[DONE]`) in one write. It records
//! nothing and parses nothing, so what a load run measures beside it is the server under
//! test, not the mock. (The test double `refbook_core::testing::MockLlm` scripts, delays
//! and records; it is far too slow to stand in for a fast model at thousands of chats
//! a second.)

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// A running fast mock; stops with the runtime.
#[derive(Debug)]
pub struct FastMock {
    addr: SocketAddr,
}

/// The SSE body of one reply: a role chunk, `pieces` content chunks, the finish chunk
/// with usage, `[DONE]`.
pub fn reply_body(pieces: usize) -> Bytes {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1_763_800_000,
               "model": "fast-mock", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = String::new();
    let mut push = |value: serde_json::Value| body.push_str(&format!("data: {value}\n\n"));
    push(chunk(json!({"role": "assistant", "content": ""}), None));
    for i in 0..pieces {
        push(chunk(json!({"content": format!("第{i}句。")}), None));
    }
    let mut finish = chunk(json!({}), Some("stop"));
    finish["usage"] = json!({"prompt_tokens": 120, "completion_tokens": 100, "total_tokens": 220});
    push(finish);
    body.push_str("data: [DONE]\n\n");
    Bytes::from(body)
}

impl FastMock {
    /// Starts on a free loopback port, answering every request with `reply_body(pieces)`.
    pub async fn start(pieces: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let body = reply_body(pieces);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            // Read the request to its end, then answer.
                            let _ = request.into_body().collect().await;
                            let mut response = Response::new(Full::new(body));
                            response.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("text/event-stream"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
