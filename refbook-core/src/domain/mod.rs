//! The records every part of Refbook speaks in: books and their ISBNs, conversations,
//! messages, personas, roles, statuses and token usage. A leaf: it depends on nothing in
//! the crate but `error` and `timestamp`, and the services (`books`, `chat`), the store
//! and the model seam (`llm`) all depend on it, never on each other for these types.

mod book;
mod book_text;
mod chat;
mod guide;
mod ids;
mod isbn;
mod reading;

pub use book::{Book, BookFields, Cover, StoredBook, SOURCES};
pub use book_text::{
    BookTextInfo, SectionRef, Source, TextChunk, TextFormat, TextScope, TextSection, TextState,
};
pub use chat::{
    BookBrief, CollectionItem, Conversation, FinishReason, Message, MessageStatus, NewMessage,
    Persona, Role, TokenUsage,
};
pub use guide::{GuideEntry, GuideRecord, GuideState};
pub use ids::{ConversationId, MessageId, PersonaId, UserId};
pub use isbn::{Isbn, IsbnError};
pub use reading::{ReadingMark, ReadingPoint, StoredProgress};
