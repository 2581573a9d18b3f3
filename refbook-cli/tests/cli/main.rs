//! The `refbook-cli` binary, run as a user would, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod books;
mod chat;
#[cfg(feature = "local-model")]
mod local_model;
mod run;
