//! `refbook-cli books text …`: the library's texts of books — add, list, sections, remove,
//! search.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use refbook_core::domain::{BookTextInfo, Isbn, TextFormat, TextScope, TextState};
use refbook_core::{Error, Language, Refbook};

use crate::failure::Failure;

#[derive(Subcommand, Debug)]
pub enum TextCommand {
    /// Store a book's text (plain text in UTF-8 or GB18030/GBK, Markdown by its `.md` name,
    /// EPUB by its `.epub` name) and index it, with a progress bar; the same file again
    /// changes nothing, another replaces the old text when it is indexed (a server on the
    /// same database serves the old text until then, and finishes the indexing if this
    /// command is interrupted).
    Add {
        /// The book's ISBN.
        #[arg(long)]
        isbn: String,
        /// The file.
        file: PathBuf,
    },
    /// List the books that have a text.
    List,
    /// List a book's sections with their indexes (what `chat --progress N` takes).
    Sections {
        /// The book's ISBN.
        #[arg(long)]
        isbn: String,
    },
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
        TextCommand::Sections { isbn } => sections(refbook, &isbn, language).await,
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
    if !added.replaced {
        println!("the text of {isbn} is already this file; nothing changed");
        return Ok(());
    }
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
    let done = index(refbook, &isbn, info.id, info.chunks)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    match done.state {
        TextState::Ready if done.has_vectors_of(done.embed_model.as_deref()) => {
            println!("indexed: searched by keywords and by meaning");
        }
        TextState::Ready if refbook.config().books.embed_model.as_deref() == Some("off") => {
            println!("indexed: searched by keywords (REFBOOK_EMBED_MODEL=off)");
        }
        TextState::Ready => println!(
            "indexed: searched by keywords for now — the embedder could not be had \
             (REFBOOK_LOG=warn says why); a server on this database adds the vectors when it can"
        ),
        _ => {
            return Err(Failure::plain(format!(
                "indexing failed: {}; the previous text (if any) still serves",
                done.error.as_deref().unwrap_or("unknown")
            )))
        }
    }
    Ok(())
}

/// Drives the indexing of text `id` to its end (in this process, or watching another that
/// holds it), with a progress bar of its chunks' vectors; the text as it ends.
async fn index(
    refbook: &Refbook,
    isbn: &Isbn,
    id: i64,
    chunks: usize,
) -> refbook_core::Result<BookTextInfo> {
    let texts = refbook.books().texts();
    let bar = ProgressBar::new(u64::try_from(chunks).unwrap_or(u64::MAX));
    if let Ok(style) =
        ProgressStyle::with_template("indexing [{bar:30}] {pos}/{len} passages, ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let show = |at: usize| bar.set_position(u64::try_from(at).unwrap_or(u64::MAX));
    loop {
        let now = texts.info(isbn, TextScope::Library).await?;
        let Some(now) = now.filter(|t| t.id == id) else {
            bar.finish_and_clear();
            return Err(Error::not_found(
                "这本书的文本",
                "The text (replaced or removed meanwhile)",
            ));
        };
        show(now.vectors);
        if now.state != TextState::Indexing {
            bar.finish_and_clear();
            return Ok(now);
        }
        texts
            .work_now(&|text, done, _| {
                if text == id {
                    show(done);
                }
            })
            .await?;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
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
            "{}  {:>9} characters  {:>6} passages  {:<8}  {:<8}  added {}",
            text.isbn,
            text.chars,
            text.chunks,
            text.format.as_str(),
            text.state.as_str(),
            text.created_at.to_iso8601()
        );
    }
    Ok(())
}

async fn sections(refbook: &Refbook, isbn: &str, language: Language) -> Result<(), Failure> {
    let isbn = isbn_of(isbn, language)?;
    let texts = refbook.books().texts();
    let fail = |e: Error| Failure::from_error(&e, language);
    let Some(text) = texts.seen_by(&isbn, None).await.map_err(fail)? else {
        return Err(Failure::plain(format!("{isbn} has no text"))
            .hint("add one: refbook-cli books text add --isbn ISBN FILE"));
    };
    for section in texts.sections(&text).await.map_err(fail)? {
        let title = if section.title.is_empty() {
            "—"
        } else {
            section.title.as_str()
        };
        println!(
            "{:>5}  {title}  ({} characters)",
            section.index,
            section.end - section.start
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
