//! The models of the OpenAI face as clients list and show them: each book the user has
//! touched, once as itself (the librarian) and once per persona, named by its title so a
//! model picker shows "三体" and "三体 · 作者" rather than ISBNs.

use super::model_name::{BookModel, PersonaChoice};
use crate::chat::answering::Answering;
use crate::domain::{Persona, UserId};
use crate::error::Result;
use crate::timestamp::Timestamp;

/// The most books `GET /v1/models` lists (the most recently touched).
pub const MAX_LISTED_BOOKS: i64 = 200;

/// The most entries `GET /v1/models` lists (books times personas, newest books first).
pub const MAX_LISTED_MODELS: usize = 2000;

/// Between a book's title and a persona's name in a model's display name.
const NAME_SEPARATOR: &str = " · ";

/// One model of the OpenAI face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// The canonical model name (`9787536692930`, `9787536692930@author`, `…@12`).
    pub id: String,
    /// What a model picker shows: the book's title, then ` · ` and the persona's name
    /// for a persona other than the default (the ISBN when the title is not stored).
    pub name: String,
    /// For a listed model the user's latest activity with the book; for a retrieved
    /// one, when Refbook last fetched the book.
    pub created: Timestamp,
}

/// The persona a model name chooses for `persona` (a built-in by key, else by id), or
/// `None` for the default persona (listed as the book itself).
fn choice_of(persona: &Persona) -> Option<PersonaChoice> {
    match persona.key.as_deref() {
        Some(crate::chat::conversations::DEFAULT_PERSONA) => None,
        Some(key) => Some(PersonaChoice::Builtin(key.to_owned())),
        None => Some(PersonaChoice::Id(persona.id)),
    }
}

fn display_name(title: &str, persona: Option<&Persona>) -> String {
    match persona {
        Some(persona) => format!("{title}{NAME_SEPARATOR}{}", persona.name),
        None => title.to_owned(),
    }
}

impl Answering {
    /// The models a user may pick (`GET /v1/models`): every book they have a
    /// conversation about, collected, marked progress in, or that has a text they can
    /// read — most recent first, up to [`MAX_LISTED_BOOKS`] — each as itself and then
    /// once per persona (built-ins, then the user's own), up to [`MAX_LISTED_MODELS`]
    /// entries.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn models(&self, user_id: UserId) -> Result<Vec<ListedModel>> {
        let (books, personas) = tokio::try_join!(
            async {
                Ok(self
                    .shared
                    .store
                    .recent_books(user_id, MAX_LISTED_BOOKS)
                    .await?)
            },
            self.conversations.personas(user_id)
        )?;
        let variants: Vec<(PersonaChoice, &Persona)> = personas
            .iter()
            .filter_map(|persona| Some((choice_of(persona)?, persona)))
            .collect();
        let mut models = Vec::with_capacity(books.len() * (1 + variants.len()));
        for book in books {
            let title = book.title.as_deref().unwrap_or(book.isbn.as_str());
            let mut model = BookModel {
                isbn: book.isbn.clone(),
                persona: PersonaChoice::Default,
            };
            models.push(ListedModel {
                id: model.to_string(),
                name: display_name(title, None),
                created: book.at,
            });
            for (choice, persona) in &variants {
                model.persona = choice.clone();
                models.push(ListedModel {
                    id: model.to_string(),
                    name: display_name(title, Some(persona)),
                    created: book.at,
                });
            }
        }
        models.truncate(MAX_LISTED_MODELS);
        Ok(models)
    }

    /// One model by name (`GET /v1/models/{model}`): any book the lookup chain finds,
    /// with a persona the user may use.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown book or persona.
    pub async fn book_model(&self, user_id: UserId, model: &BookModel) -> Result<ListedModel> {
        let persona = self.conversations.chosen_persona(user_id, model).await?;
        let book = self.model_book(model).await?;
        let shown = match model.persona {
            PersonaChoice::Default => None,
            _ => Some(&persona),
        };
        Ok(ListedModel {
            id: model.to_string(),
            name: display_name(&book.title, shown),
            created: book.updated_at,
        })
    }
}
