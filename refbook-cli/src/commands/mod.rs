//! One module per command group.

pub mod book;
pub mod chat;
pub mod guide;
pub mod history;
pub mod texts;
