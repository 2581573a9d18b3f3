//! Asks one question about a book and prints the answer as it streams.
//!
//! ```text
//! REFBOOK_LLM_API_KEY=sk-… cargo run -p refbook-examples --bin ask -- 9787536692930 "作者是谁？"
//! ```
//! (Or point `REFBOOK_LLM_BASE_URL` at the `mock_llm` example.)

use std::io::Write;

use refbook_core::books::Isbn;
use refbook_core::chat::ReplyEvent;
use refbook_core::{Config, Refbook};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let isbn = args.next().unwrap_or_else(|| "9787536692930".to_owned());
    let question = args.next().unwrap_or_else(|| "这本书讲了什么？".to_owned());
    let config = Config::from_env(None, &[("database_url", "sqlite::memory:".into())])?;
    let refbook = Refbook::builder(config).build().await?;

    // Conversations belong to a user: make one for this program.
    let user = refbook
        .accounts()
        .local_user("example.local", "example")
        .await?;
    let conversation = refbook
        .conversations()
        .create_conversation(user.id, &Isbn::parse(&isbn)?, None, None)
        .await?;
    let started = refbook
        .answering()
        .ask(user.id, conversation.id, &question)
        .await?;

    // Any number of listeners can read a reply; this one prints it.
    let mut listener = started.reply.listen(0);
    let mut stdout = std::io::stdout();
    while let Some(events) = listener.next().await {
        for (_, event) in events {
            match event {
                ReplyEvent::Content(text) => write!(stdout, "{text}")?,
                ReplyEvent::Error { message, .. } => anyhow::bail!(message.to_string()),
                _ => {}
            }
            stdout.flush()?;
        }
    }
    writeln!(stdout)?;
    Ok(())
}
