//! Plugs in your own book source and your own model: a fixed catalogue and a model that
//! answers from a script. Nothing leaves the machine.
//!
//! `cargo run -p refbook-examples --bin custom_seams`

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use refbook_core::books::{Book, BookFields, BookSource, Isbn, SourceError};
use refbook_core::chat::{ReplyEvent, TokenUsage};
use refbook_core::llm::{ChatModel, ChatRequest, ModelError, ModelEvent, ModelStream};
use refbook_core::timestamp::Timestamp;
use refbook_core::{Config, Refbook};

/// A catalogue that knows one book.
struct Shelf;

#[async_trait]
impl BookSource for Shelf {
    fn name(&self) -> &'static str {
        "shelf"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        if isbn.as_str() != "9787505715660" {
            return Ok(None);
        }
        let fields = BookFields {
            title: "小王子".into(),
            authors: vec!["圣埃克苏佩里".into()],
            introduction: Some("一位小王子离开自己的星球，去各个星球旅行。".into()),
            ..BookFields::default()
        };
        Ok(Some(fields.into_book(isbn, self.name(), Timestamp::now())))
    }
}

/// A model that answers every question the same way, word by word.
struct Parrot;

#[async_trait]
impl ChatModel for Parrot {
    fn model_name(&self) -> &str {
        "parrot-1"
    }

    async fn stream(&self, request: ChatRequest) -> Result<ModelStream, ModelError> {
        let question = request
            .messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let answer = format!("你问「{question}」。本质的东西，用眼睛是看不见的。");
        let mut events: Vec<Result<ModelEvent, ModelError>> = answer
            .chars()
            .map(|c| Ok(ModelEvent::Content(c.to_string())))
            .collect();
        events.push(Ok(ModelEvent::Usage(TokenUsage::new(10, 20))));
        Ok(Box::pin(stream::iter(events)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.database.url = "sqlite::memory:".into();
    let refbook = Refbook::builder(config)
        .book_sources(vec![Arc::new(Shelf)])
        .model(Arc::new(Parrot))
        .build()
        .await?;
    let user = refbook
        .accounts()
        .local_user("reader.local", "reader")
        .await?;
    let conversation = refbook
        .conversations()
        .create_conversation(user.id, &Isbn::parse("978-7-5057-1566-0")?, None, None)
        .await?;
    println!(
        "《{}》 by {}",
        conversation.book.title, conversation.book.author
    );
    let started = refbook
        .answering()
        .ask(user.id, conversation.id, "这本书最重要的一句话是什么？")
        .await?;
    let mut listener = started.reply.listen(0);
    while let Some(events) = listener.next().await {
        for (_, event) in events {
            if let ReplyEvent::Content(text) = event {
                print!("{text}");
            }
        }
    }
    println!();
    Ok(())
}
