//! `book ISBN [--json]` and `books import FILE`.

use std::path::Path;

use refbook_core::books::{parse_catalog, CatalogFormat, Isbn};
use refbook_core::{Error, Language, Refbook};

use crate::failure::Failure;
use crate::render;

/// Looks a book up and prints it.
pub async fn show(
    refbook: &Refbook,
    isbn: &str,
    json: bool,
    language: Language,
) -> Result<(), Failure> {
    let isbn = parse_isbn(isbn, language)?;
    let book = refbook
        .books()
        .get(&isbn)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    if json {
        let text = serde_json::to_string_pretty(&book)
            .map_err(|e| Failure::plain(format!("cannot encode the book: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render::book(&book, language));
    }
    Ok(())
}

/// An ISBN as typed, or a failure with a hint.
pub fn parse_isbn(isbn: &str, language: Language) -> Result<Isbn, Failure> {
    Isbn::parse(isbn).map_err(|e| {
        Failure::from_error(&Error::from(e), language)
            .hint("an ISBN has 10 or 13 digits, e.g. 9787536692930 or 7-5366-9293-5")
    })
}

/// Imports a catalogue file: every row valid, or nothing imported.
pub async fn import(refbook: &Refbook, file: &Path, language: Language) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::plain(format!("cannot read {}: {e}", file.display())))?;
    let entries = parse_catalog(&text, CatalogFormat::from_path(file)).map_err(|problems| {
        for problem in &problems {
            eprintln!("{}: {problem}", file.display());
        }
        Failure::plain(format!(
            "{} problem(s) in {}; nothing was imported",
            problems.len(),
            file.display()
        ))
        .hint("columns: isbn,title,subtitle,authors,translators,publisher,published,pages,introduction,author_intro,cover_url,tags (lists separated by ;)")
    })?;
    let count = refbook
        .books()
        .import_catalog(entries)
        .await
        .map_err(|e| Failure::from_error(&e, language))?;
    println!("imported {count} book(s) into the local catalogue");
    Ok(())
}
