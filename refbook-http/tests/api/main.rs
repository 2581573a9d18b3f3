//! HTTP tests through a real socket: each test spawns the server on port 0 with a fresh
//! database, once on SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod api_keys;
mod binary;
mod books;
mod browser;
mod chat;
mod conventions;
mod conversations;
mod durability;
mod faults;
mod front_door;
mod grounding;
mod guides;
mod helpers;
mod hostile;
mod instances;
#[cfg(feature = "local-model")]
mod local_model;
mod ndjson;
mod openai_clients;
mod openai_face;
mod openai_responses;
mod openai_tools;
mod reading;
mod users;
mod wechat;
