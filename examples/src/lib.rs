//! Embedding examples for Refbook. Each program in `src/bin/` uses only the public API of
//! `refbook-core` and `refbook-http`; run one with
//! `cargo run -p refbook-examples --bin NAME -- ARGS`:
//!
//! - `lookup ISBN` — look a book up with the default chain.
//! - `ask ISBN QUESTION` — one question, the answer streamed to stdout.
//! - `custom_seams` — your own `BookSource` and `ChatModel`.
//! - `serve [DATABASE_URL] [ADDR]` — the HTTP API inside your own program.
//! - `mock_llm [ADDR]` — a tiny OpenAI-compatible model server, to try everything without
//!   an API key.

#![warn(missing_docs)]
