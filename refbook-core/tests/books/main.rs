//! Book sources against stand-ins reproducing UPSTREAMS.md, and the lookup chain on
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain;
mod embedder;
mod fixtures;
mod reading;
mod sources;
mod text_work;
mod texts;
