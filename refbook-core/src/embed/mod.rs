//! Sentence embeddings: a book's chunks and a reader's question as vectors, so a search
//! can find a passage by meaning as well as by its words.
//!
//! - [`Embedder`] — the seam: texts in, unit vectors out.
//! - [`EmbedderSource`] — the embedder `REFBOOK_EMBED_MODEL` names (`off`, a local folder,
//!   or a model on the hub downloaded once), had on first need; while it cannot be had,
//!   search runs on keywords alone and the log says so once.
//! - `BertEmbedder` (with the `local-model` feature) — a BERT-family sentence-transformers
//!   model run in this process with candle.

#[cfg(feature = "local-model")]
mod bert;
mod model_ref;
mod source;

#[cfg(feature = "local-model")]
pub use bert::BertEmbedder;
pub use model_ref::{EmbedRef, DEFAULT_EMBED_MODEL, EMBED_MODEL_FILES};
pub use source::EmbedderSource;

/// Turns texts into vectors whose dot product says how alike their meanings are.
///
/// The work is CPU-bound: callers run it on a blocking thread.
pub trait Embedder: Send + Sync {
    /// The model's identity; vectors are stored with it, and vectors of another model are
    /// computed again.
    fn id(&self) -> &str;
    /// One unit-length vector per text, in order.
    ///
    /// # Errors
    ///
    /// What went wrong in the model.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
    /// The share (0–1) of `text`'s tokens the model knows: an English-only model reading
    /// Chinese knows few, and its vector says little.
    fn known_share(&self, text: &str) -> f32;
}
