//! The reply engine: a reply is an append-only event log with stable positions, owned by
//! one generation task under a lease recorded in the database.
//!
//! - [`event`] — [`ReplyEvent`] and the log that positions events by the text's length.
//! - [`buffer`] — [`Reply`], the shared log, and [`ReplyListener`], a reader at a position.
//! - [`registry`] — [`Replies`], the replies this process generates or finished lately.
//! - [`driver`] — the generation task: model → log, checkpoints and lease, the final save
//!   with retries, panic-proof endings.
//! - [`follow`] — a reply generating in another process, followed through the database.
//! - [`remote`] — with Redis: the owner publishes a reply's events live, and another
//!   instance follows them (the database underneath).

pub(crate) mod buffer;
pub(crate) mod driver;
pub(crate) mod event;
pub(crate) mod follow;
pub(crate) mod registry;
pub(crate) mod remote;

pub use buffer::{Reply, ReplyListener};
pub use driver::{GenerationObserver, GenerationReport};
pub use event::{Grounding, Positioned, ReplyEvent};
pub(crate) use registry::Replies;
