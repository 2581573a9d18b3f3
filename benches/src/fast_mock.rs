//! [`FastMock`]: the cheapest OpenAI-compatible streaming server we can write, for load
//! runs — every request gets the same pre-rendered SSE body (a role chunk, `pieces`
//! content chunks, a finish chunk with usage, `[DONE]`) in one write. It records
//! nothing and parses nothing, so what a load run measures beside it is the server under
//! test, not the mock. [`FastMock::start_holding`] holds every reply open after its first
//! chunk, for measuring what open streams cost.

use std::convert::Infallible;
use std::net::SocketAddr;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
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

/// What every request gets.
#[derive(Clone)]
enum Answer {
    /// The whole body in one write.
    AtOnce(Bytes),
    /// The head at once, then the tail after a pause (a reply held open).
    Held {
        head: Bytes,
        tail: Bytes,
        pause: Duration,
    },
}

type MockBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

impl Answer {
    fn body(&self) -> MockBody {
        match self.clone() {
            Self::AtOnce(body) => Full::new(body).boxed(),
            Self::Held { head, tail, pause } => {
                let frames = futures::stream::iter([Ok(Frame::data(head))]).chain(
                    futures::stream::once(async move {
                        tokio::time::sleep(pause).await;
                        Ok(Frame::data(tail))
                    }),
                );
                BodyExt::boxed(StreamBody::new(frames))
            }
        }
    }
}

impl FastMock {
    /// Starts on a free loopback port, answering every request with `reply_body(pieces)`.
    pub async fn start(pieces: usize) -> std::io::Result<Self> {
        Self::serve(Answer::AtOnce(reply_body(pieces))).await
    }

    /// Starts a mock whose every reply sends its role chunk and first content chunk at
    /// once, then holds the stream open for `pause` before the rest: for measuring what
    /// open streams cost the server.
    pub async fn start_holding(pause: Duration) -> std::io::Result<Self> {
        let body = reply_body(1);
        // The role chunk and the content chunk are the first two events.
        let cut = body
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\n\n")
            .nth(1)
            .map_or(body.len(), |(at, _)| at + 2);
        Self::serve(Answer::Held {
            head: body.slice(..cut),
            tail: body.slice(cut..),
            pause,
        })
        .await
    }

    async fn serve(answer: Answer) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            // Read the request to its end, then answer.
                            let _ = request.into_body().collect().await;
                            let mut response = Response::new(answer.body());
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
