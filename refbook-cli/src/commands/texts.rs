//! `refbook-cli books text …`: the library's texts of books — add, list, remove, search.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use refbook_core::domain::{Isbn, TextFormat, TextScope};
use refbook_core::{Error, Language, Refbook};

use crate::failure::Failure;

#[derive(Subcommand, Debug)]
pub enum TextCommand {
    /// Store a book's text (plain text in UTF-8 or GB18030/GBK, Markdown by its `.md` name,
    /// EPUB by its `.epub` name); the same file again changes nothing, another replaces
    /// the old text.
    Add {
        /// The book's ISBN.
        #[arg(long)]
        isbn: String,
        /// The file.
        file: PathBuf,
    },
    /// List the books that have a text.
    List,
    /// Remove a book's text.
    Remove {
        /// The book's ISBN.
        #[arg(long)]
        isbn: String,
    },
    /// Search a book's text: the passages a question would be answered from.
    Search {
        /// The book's ISBN.
        #[arg(long)]
        isbn: String,
        /// How many passages (at most 20).
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// What to look for.
        query: String,
    },
}

/// Runs one `books text` command.
pub async fn run(
    refbook: &Refbook,
    command: TextCommand,
    language: Language,
) -> Result<(), Failure> {
    match command {
        TextCommand::Add { isbn, file } => add(refbook, &isbn, &file, language).await,
        TextCommand::List => list(refbook, language).await,
        TextCommand::Remove { isbn } => remove(refbook, &isbn, language).await,
        TextCommand::Search { isbn, limit, query } => {
            search(refbook, &isbn, &query, limit, language).await
        }
    }
}

fn isbn_of(text: &str, language: Language) -> Result<Isbn, Failure> {
    Isbn::parse(text).map_err(|e| Failure::from_error(&Error::from(e), language))
}

async fn add(
    refbook: &Refbook,
    isbn: &str,
    file: &Path,
    language: Language,
) -> Result<(), Failure> {
    let isbn = isbn_of(isbn, language)?;
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::plain(format!("cannot read {}: {e}", file.display())))?;
    let format = TextFormat::of_file_name(&file.to_string_lossy());
    let added = refbook
        .books()
        .texts()
        .add(&isbn, TextScope::Library, format, bytes)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    let info = &added.info;
    if added.replaced {
        let sections = refbook
            .books()
            .texts()
            .sections(info)
            .await
            .map_err(|e| Failure::from_error(&e, language))?;
        println!(
            "stored the text of {isbn}: {} characters, {} sections, {} passages",
            info.chars,
            sections.len(),
            info.chunks
        );
    } else {
        println!("the text of {isbn} is already this file; nothing changed");
    }
    Ok(())
}

async fn list(refbook: &Refbook, language: Language) -> Result<(), Failure> {
    let texts = refbook
        .books()
        .texts()
        .list(TextScope::Library)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    if texts.is_empty() {
        println!("no book has a text yet (add one: refbook-cli books text add --isbn ISBN FILE)");
    }
    for text in texts {
        println!(
            "{}  {:>9} characters  {:>6} passages  {:<8}  added {}",
            text.isbn,
            text.chars,
            text.chunks,
            text.format.as_str(),
            text.created_at.to_iso8601()
        );
    }
    Ok(())
}

async fn remove(refbook: &Refbook, isbn: &str, language: Language) -> Result<(), Failure> {
    let isbn = isbn_of(isbn, language)?;
    let removed = refbook
        .books()
        .texts()
        .remove(&isbn, TextScope::Library)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    if removed {
        println!("removed the text of {isbn}");
        Ok(())
    } else {
        Err(Failure::plain(format!("{isbn} has no text")))
    }
}

async fn search(
    refbook: &Refbook,
    isbn: &str,
    query: &str,
    limit: usize,
    language: Language,
) -> Result<(), Failure> {
    let isbn = isbn_of(isbn, language)?;
    let found = refbook
        .books()
        .texts()
        .search(&isbn, None, query, limit)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    let Some(passages) = found else {
        return Err(Failure::plain(format!("{isbn} has no text"))
            .hint("add one: refbook-cli books text add --isbn ISBN FILE"));
    };
    if passages.is_empty() {
        println!("no passage matches");
    }
    for (n, passage) in passages.iter().enumerate() {
        println!(
            "[{}] {} ({}–{}, score {:.2})\n{}\n",
            n + 1,
            if passage.section.title.is_empty() {
                "—"
            } else {
                &passage.section.title
            },
            passage.start,
            passage.end,
            passage.score,
            passage.text.trim()
        );
    }
    Ok(())
}
