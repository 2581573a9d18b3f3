//! Talking with a book, as two services:
//!
//! - [`Conversations`] (`conversations/`): conversations and their messages as stored,
//!   and personas — what a reader keeps.
//! - [`Answering`] (`answering/`): everything that asks the model — a question in a
//!   conversation, regeneration, the stateless `/api/chat/stream/`, the OpenAI face's
//!   completions — and the replies once started (stop, re-attach, shutdown). Every path
//!   goes through one step, `answering/step.rs`: the book, persona, history and question
//!   in; the prompt within the budget, the model's stream (and the context refusal's one
//!   retry) out.
//!
//! Beside them: `exchange.rs` (what a client sends: its messages, parsed once),
//! `prompt.rs` and `tokens.rs` (the prompt and its estimate), `reply/` (the reply
//! engine: buffer, driver, registry, following another instance), `sweep.rs` (settling
//! replies whose owner died).

mod answering;
mod conversations;
mod exchange;
mod grounding;
mod limits;
pub mod prompt;
mod reply;
mod reply_slots;
mod shared;
mod sweep;
pub mod tokens;

use std::sync::Arc;

pub use crate::domain::{
    BookBrief, CollectionItem, Conversation, FinishReason, Message, MessageStatus, NewMessage,
    Persona, Role, TokenUsage,
};
pub use crate::domain::{SectionRef, Source};
pub use crate::llm::{LocalModelReport, Sampling, ToolCallDelta, ToolPassthrough};
pub use crate::store::StoredResponse;
pub use answering::completion::{
    is_client_task, BookModel, Completion, CompletionEvent, CompletionRequest, CompletionStream,
    ListedModel, PersonaChoice, ResponseDraft, ResponseOutcome, ResponseRequest,
    MAX_COMPLETION_MESSAGES, MAX_LISTED_BOOKS, MAX_LISTED_MODELS, MAX_STOP_SEQUENCES,
    PERSONA_SEPARATOR, TASK_COST_DIVISOR, TASK_MAX_TOKENS,
};
pub use answering::{Answering, Started};
pub use conversations::Conversations;
pub use exchange::{ClientMessage, MAX_INSTRUCTIONS_CHARS};
pub use grounding::citations_in;
pub use limits::{
    ChatLimits, PERSONA_DESCRIPTION_MAX_CHARS, PERSONA_NAME_MAX_CHARS, TITLE_MAX_CHARS,
};
pub use reply::{
    GenerationObserver, GenerationReport, Grounding, Positioned, Reply, ReplyEvent, ReplyListener,
};

use crate::books::Books;
use crate::cluster::{Cluster, Notice};
use crate::guide::Guides;
use crate::llm::ChatModel;
use crate::store::Store;
use reply::Replies;
use shared::Shared;

/// `origin` of conversations created by the stateless `/api/chat/stream/` endpoint.
pub const STATELESS_ORIGIN: &str = "chat_stream";

/// Builds the two chat services over one store. Must be called inside a Tokio runtime:
/// answering starts the sweep that settles replies whose owner died (every half lease).
/// With `cluster`, replies are shared with the other instances: replies generating here
/// are published live, replies generating elsewhere are followed live, and `stop/`,
/// regeneration and deletion reach the instance that generates.
pub fn services(
    store: Arc<dyn Store>,
    books: Arc<Books>,
    guides: Arc<Guides>,
    model: Arc<dyn ChatModel>,
    limits: ChatLimits,
    observer: Option<GenerationObserver>,
    cluster: Option<Cluster>,
) -> (Conversations, Answering) {
    let replies = Replies::default();
    if let Some(cluster) = &cluster {
        let replies = replies.clone();
        cluster.on_notice(Arc::new(move |notice| match *notice {
            Notice::Stop { conversation_id } => {
                if let Some(reply) = replies.running(conversation_id) {
                    reply.cancel(FinishReason::Cancelled);
                }
            }
            Notice::Changed { conversation_id } => replies.forget(conversation_id),
            Notice::Revoked { .. } => {}
        }));
    }
    let shared = Shared {
        store,
        books,
        guides,
        replies,
        limits,
        cluster,
    };
    let conversations = Conversations::new(shared.clone());
    let answering = Answering::new(shared, conversations.clone(), model, observer);
    (conversations, answering)
}
