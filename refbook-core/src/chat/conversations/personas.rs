//! Personas: the built-in ones (the librarian, the author) and a user's own.

use super::Conversations;
use crate::chat::answering::completion::{BookModel, PersonaChoice};
use crate::chat::{PERSONA_DESCRIPTION_MAX_CHARS, PERSONA_NAME_MAX_CHARS};
use crate::domain::Persona;
use crate::domain::{PersonaId, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::store::ReplyTarget;
use crate::timestamp::Timestamp;

/// The persona of conversations that name none.
pub(crate) const DEFAULT_PERSONA: &str = "librarian";

impl Conversations {
    /// Built-in personas and the user's own.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn personas(&self, user_id: UserId) -> Result<Vec<Persona>> {
        Ok(self.shared.store.personas(user_id).await?)
    }

    /// One persona the user may see.
    ///
    /// # Errors
    ///
    /// `NotFound` for a persona the user cannot see; `Internal` when the database fails.
    pub async fn persona(&self, user_id: UserId, id: PersonaId) -> Result<Persona> {
        self.shared
            .store
            .persona(id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("角色", "Persona"))
    }

    /// Creates a custom persona (name 1–32 characters, description 1–2000).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name or description out of bounds; `Internal` when the database
    /// fails.
    pub async fn create_persona(
        &self,
        user_id: UserId,
        name: &str,
        description: &str,
    ) -> Result<Persona> {
        let name = name.trim();
        let description = description.trim();
        crate::text::refuse_controls("name", name)?;
        crate::text::refuse_controls("description", description)?;
        if !(1..=PERSONA_NAME_MAX_CHARS).contains(&name.chars().count()) {
            return Err(Error::invalid(
                "name",
                "角色名须为 1–32 个字符",
                "name must be 1–32 characters",
            ));
        }
        if !(1..=PERSONA_DESCRIPTION_MAX_CHARS).contains(&description.chars().count()) {
            return Err(Error::invalid(
                "description",
                "角色说明须为 1–2000 个字符",
                "description must be 1–2000 characters",
            ));
        }
        Ok(self
            .shared
            .store
            .create_persona(user_id, name, description, Timestamp::now())
            .await?)
    }

    /// Deletes one of the user's personas; built-ins cannot be deleted (`400`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a persona the user cannot see, `InvalidInput` for a built-in one;
    /// `Internal` when the database fails.
    pub async fn delete_persona(&self, user_id: UserId, id: PersonaId) -> Result<()> {
        let persona = self.persona(user_id, id).await?;
        if persona.builtin {
            return Err(Error::invalid(
                "id",
                "内置角色不能删除",
                "Built-in personas cannot be deleted",
            ));
        }
        self.shared.store.delete_persona(id, user_id).await?;
        Ok(())
    }

    /// `persona_id` when the user may use it (`INVALID_PARAMS` otherwise).
    pub(super) async fn check_persona(
        &self,
        user_id: UserId,
        persona_id: Option<PersonaId>,
    ) -> Result<Option<PersonaId>> {
        match persona_id {
            None => Ok(None),
            Some(id) => match self.shared.store.persona(id, user_id).await? {
                Some(_) => Ok(Some(id)),
                None => Err(Error::invalid(
                    "persona_id",
                    "角色不存在",
                    "No such persona",
                )),
            },
        }
    }

    /// The persona a conversation answers as: its own, or the librarian when it names
    /// none (or one since deleted).
    pub(crate) async fn persona_of(&self, target: &ReplyTarget) -> Result<Persona> {
        if let Some(id) = target.persona_id {
            if let Some(persona) = self.shared.store.persona(id, target.user_id).await? {
                return Ok(persona);
            }
        }
        self.builtin_persona(DEFAULT_PERSONA)
            .await?
            .ok_or_else(|| Error::internal("the built-in librarian persona is missing"))
    }

    /// A built-in persona by key. Built-ins change only with a migration, so they are
    /// kept in memory once read.
    async fn builtin_persona(&self, key: &str) -> Result<Option<Persona>> {
        if let Some(persona) = self.builtin_personas.get(key) {
            return Ok(Some(persona));
        }
        let found = self.shared.store.builtin_persona(key).await?;
        if let Some(persona) = &found {
            self.builtin_personas
                .insert(key.to_owned(), persona.clone());
        }
        Ok(found)
    }

    /// The persona a model name chose (`NOT_FOUND` as for an unknown model).
    pub(crate) async fn chosen_persona(
        &self,
        user_id: UserId,
        model: &BookModel,
    ) -> Result<Persona> {
        let found = match &model.persona {
            PersonaChoice::Default => self.builtin_persona(DEFAULT_PERSONA).await?,
            PersonaChoice::Builtin(key) => self.builtin_persona(key).await?,
            PersonaChoice::Id(id) => self.shared.store.persona(*id, user_id).await?,
        };
        found.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "模型名中的角色不存在",
                "The persona named in the model does not exist",
            )
            .with_field("model")
        })
    }
}
