//! # refbook-http
//!
//! A minimal hyper 1.x server exposing `refbook-core` as the JSON + SSE contract in
//! `docs/API.md`.
//!
//! ## Layout
//!
//! - [`connections`] — open-file limit, connection cap, idle limit, accept backoff.
//! - [`server`] — accept loop (HTTP/1.1 + HTTP/2), graceful shutdown, [`RunningServer`].
//! - [`pipeline`] — one request end to end: request id, language, CORS, auth, the
//!   handler, security headers, access log.
//! - [`routes`] — the route table: one row per path with its methods, handlers, access
//!   and OpenAPI documentation; [`router`] — what a row is, and matching paths to rows.
//! - [`handlers`] — one module per part of the contract; [`web`] — the browser pages.
//! - [`app`] — the server's state; [`ctx`] — what a handler gets; [`request_body`] —
//!   JSON and forms in; [`body`] — responses out; [`api_error`] — the error body and the
//!   kind → status/code mapping.
//! - [`pagination`] — `limit`/`offset` pages with `next`/`previous` links.
//! - [`sse`] — the contract's Server-Sent Events encoding of replies.
//! - [`openai_wire`] — the OpenAI-compatible face's `chat.completion` objects and chunk
//!   stream.
//! - [`metrics`] — Prometheus metrics and the hooks that feed them.
//! - [`openapi`] — the OpenAPI 3.1 document, built from the route table.
//! - [`telemetry`] — log setup. (Rate limits of logins and generations come from the
//!   core: `Refbook::rate_limiter`.)

#![warn(missing_docs)]

pub mod api_error;
pub mod app;
pub mod body;
pub mod connections;
pub mod ctx;
pub mod frame_pump;
pub mod handlers;
pub mod metrics;
pub mod openai_request;
pub mod openai_wire;
pub mod openapi;
pub mod pagination;
pub mod pipeline;
pub mod request_body;
pub mod responses_request;
pub mod responses_wire;
pub mod router;
pub mod routes;
pub mod server;
pub mod settings;
pub mod sse;
pub mod telemetry;
pub mod web;

pub use app::App;
pub use server::{serve, serve_with, shutdown_signal, RunningServer};
pub use settings::{HttpSettings, ServerConfig};
