//! `refbook-cli history` and `refbook-cli show ID`.

use refbook_core::{Language, Refbook};

use crate::failure::Failure;
use crate::local_user::local_user;
use crate::render;
use crate::terminal::{out, Style};
use refbook_core::domain::ConversationId;

/// Lists the local user's conversations.
pub async fn list(refbook: &Refbook, language: Language) -> Result<(), Failure> {
    let user = local_user(refbook).await?;
    let (count, conversations) = refbook
        .conversations()
        .conversations(user.id, None, 100, 0)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    if count == 0 {
        out("no conversations yet — start one with `refbook-cli chat --isbn ISBN`\n");
        return Ok(());
    }
    for c in conversations {
        out(&format!(
            "{:>5}  {}  《{}》  {}  ({} messages)\n",
            c.id,
            c.updated_at.to_iso8601(),
            c.book.title,
            c.title,
            c.message_count
        ));
    }
    Ok(())
}

/// Prints one conversation.
pub async fn show(
    refbook: &Refbook,
    id: ConversationId,
    language: Language,
) -> Result<(), Failure> {
    let user = local_user(refbook).await?;
    let (conversation, messages) = refbook
        .conversations()
        .conversation_with_messages(user.id, id)
        .await
        .map_err(|e| {
            Failure::from_error(&e, language).hint("list conversations with `refbook-cli history`")
        })?;
    let style = Style::detect();
    out(&format!(
        "{}  ISBN {} · #{}\n\n",
        style.bold(&format!(
            "《{}》{}",
            conversation.book.title, conversation.title
        )),
        conversation.isbn,
        conversation.id
    ));
    out(&render::messages(&messages, style));
    Ok(())
}
