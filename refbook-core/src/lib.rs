//! # refbook-core
//!
//! Everything Refbook knows how to do — accounts, books, conversations and the LLM
//! session — with no HTTP and no terminal in sight. Front ends (`refbook-http`,
//! `refbook-cli`) and embedders drive it through [`Refbook`].
//!
//! ## Layout
//!
//! Leaves first; each module below uses only those above it (`.ci/module-graph` checks
//! that no two modules, and no two files anywhere, import each other).
//!
//! - [`error`] — [`Error`] with an [`ErrorKind`] front ends map, and bilingual messages.
//! - [`timestamp`] — stored times (Unix ms) and their ISO 8601 form.
//! - [`domain`] — the records everything speaks in: [`Isbn`](domain::Isbn), books,
//!   conversations, messages, personas, roles, statuses, token usage.
//! - [`config`] — the core's settings grouped by service, each with its `REFBOOK_*`
//!   variable and default; the layering (file, environment, flags) for any group.
//! - [`upstream`] — how Refbook introduces itself upstream; answers read with a size limit.
//! - [`text`] — text hygiene: no NUL or other C0 controls in stored text.
//! - [`cluster`] — with Redis (`REFBOOK_REDIS_URL`): notices between instances, the
//!   channels that carry live replies, rate limits shared by every instance.
//! - [`rate_limit`] — per-IP and per-account throttling (GCRA), counted in Redis by
//!   every instance when they share one.
//! - [`book_text`] — a book's own text: decoded, cut into sections and chunks, indexed for
//!   keyword search (pure functions; stored and searched by the books service).
//! - [`store`] — the [`Store`](store::Store) seam and [`SqlStore`](store::SqlStore)
//!   (SQLite or PostgreSQL through sqlx, embedded migrations).
//! - [`accounts`] — registration, password and WeChat logins, JWT access tokens, rotating
//!   refresh tokens with reuse detection, profiles.
//! - [`llm`] — the [`ChatModel`](llm::ChatModel) seam, the OpenAI-compatible streaming
//!   client (DeepSeek, OpenAI, Ollama, vLLM, llama.cpp) and, with the `local-model`
//!   feature, a GGUF model run in this process (downloaded once when named by hub).
//! - [`embed`] — the [`Embedder`](embed::Embedder) seam and, with the `local-model`
//!   feature, a BERT-family sentence embedder run in this process (a book's chunks and a
//!   question as vectors); had on first need, keyword search alone while it cannot be.
//! - [`books`] — book sources (Douban v2 shape, Open Library, Google Books, local
//!   catalogue), the cached single-flight lookup chain, cover proxy, search and
//!   catalogue import, a reader's collection.
//! - [`chat`] — two services: [`Conversations`](chat::Conversations) (conversations,
//!   messages, personas as stored) and [`Answering`](chat::Answering) (every way of asking
//!   the model, through one answering step; server-owned generation with resumable
//!   replies, usage and quota).
//! - [`refbook`] — the [`Refbook`] façade and its builder.
//! - `testing` (feature `testing`) — throwaway SQLite and PostgreSQL databases for tests.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), refbook_core::Error> {
//! use refbook_core::{accounts::Registration, Config, Refbook};
//!
//! let mut config = Config::default();
//! config.database.url = "sqlite://demo.db".into();
//! let refbook = Refbook::builder(config).build().await?;
//! let login = refbook
//!     .accounts()
//!     .register(Registration {
//!         username: "alice".into(),
//!         password: "correct horse battery".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("signed in as {:?}", login.user.username);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]

pub mod accounts;
mod background;
pub mod book_text;
pub mod books;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod embed;
pub mod error;
pub mod foreground;
pub mod guide;
pub mod llm;
pub mod rate_limit;
pub mod refbook;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod timestamp;
pub mod tokens;
pub mod upstream;

pub use config::{Config, LlmProvider};
pub use error::{Error, ErrorKind, Language, Message, Result};
pub use refbook::{Refbook, RefbookBuilder};
