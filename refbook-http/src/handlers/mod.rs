//! Handlers, one module per part of the contract: each an `async fn(Ctx)` that the route
//! table ([`routes`](crate::routes)) names beside its path and documentation.

pub mod accounts;
pub mod api_keys;
pub mod book_texts;
pub mod books;
pub mod chat;
pub mod collections;
pub mod conversations;
pub mod guides;
pub mod openai;
pub mod ops;
pub mod personas;
pub mod reading;
pub mod users;
