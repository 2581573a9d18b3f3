//! Model names of the OpenAI-compatible face: an ISBN, optionally `@persona`
//! (`9787536692930@author`, `…@12`).

use crate::books::Isbn;
use crate::domain::PersonaId;
use crate::error::{Error, ErrorKind, Result};

/// The separator between an ISBN and a persona in a model name.
pub const PERSONA_SEPARATOR: char = '@';

/// Which persona a model name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonaChoice {
    /// No `@…`: the librarian.
    Default,
    /// A built-in persona by key (`librarian`, `author`).
    Builtin(String),
    /// One of the user's own personas (or a built-in) by id.
    Id(PersonaId),
}

/// A model name of the OpenAI-compatible face: an ISBN in any accepted form, optionally
/// followed by `@persona` (`9787536692930@author`, `978-7-5366-9293-0@12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookModel {
    /// The book.
    pub isbn: Isbn,
    /// The persona.
    pub persona: PersonaChoice,
}

impl BookModel {
    /// Parses a model name; `NOT_FOUND` (no such model) when it names no valid ISBN or an
    /// impossible persona.
    ///
    /// # Errors
    ///
    /// `NotFound` (no such model) as said above.
    pub fn parse(name: &str) -> Result<Self> {
        let not_found = || model_not_found(name);
        let (isbn, persona) = match name.rsplit_once(PERSONA_SEPARATOR) {
            Some((isbn, persona)) => (isbn, Some(persona.trim())),
            None => (name, None),
        };
        let isbn = Isbn::parse(isbn).map_err(|_| not_found())?;
        let persona = match persona {
            None => PersonaChoice::Default,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                PersonaChoice::Id(p.parse().map_err(|_| not_found())?)
            }
            Some(p) if (1..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()) => {
                PersonaChoice::Builtin(p.to_owned())
            }
            Some(_) => return Err(not_found()),
        };
        Ok(Self { isbn, persona })
    }
}

impl std::fmt::Display for BookModel {
    /// The canonical name: the ISBN-13, then `@persona` when one was chosen.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.isbn.as_str())?;
        match &self.persona {
            PersonaChoice::Default => Ok(()),
            PersonaChoice::Builtin(key) => write!(f, "{PERSONA_SEPARATOR}{key}"),
            PersonaChoice::Id(id) => write!(f, "{PERSONA_SEPARATOR}{id}"),
        }
    }
}

pub(super) fn model_not_found(name: &str) -> Error {
    let shown: String = name.chars().take(64).collect();
    Error::new(
        ErrorKind::NotFound,
        format!("模型 {shown} 不存在：请用图书的 ISBN 作为模型名，可加 @角色"),
        format!("The model {shown} does not exist: name a book's ISBN, optionally with @persona"),
    )
    .with_field("model")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_isbns_with_an_optional_persona() {
        let plain = BookModel::parse("9787536692930").unwrap();
        assert_eq!(plain.isbn.as_str(), "9787536692930");
        assert_eq!(plain.persona, PersonaChoice::Default);
        let author = BookModel::parse("978-7-5366-9293-0@author").unwrap();
        assert_eq!(author.isbn.as_str(), "9787536692930");
        assert_eq!(author.persona, PersonaChoice::Builtin("author".into()));
        assert_eq!(author.to_string(), "9787536692930@author");
        assert_eq!(plain.to_string(), "9787536692930");
        assert_eq!(
            BookModel::parse("7536692935@12").unwrap().persona,
            PersonaChoice::Id(PersonaId::new(12))
        );
        for bad in [
            "gpt-4o",
            "9787536692931",
            "9787536692930@",
            "9787536692930@Bad Name",
        ] {
            let err = BookModel::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{bad}");
        }
    }
}
