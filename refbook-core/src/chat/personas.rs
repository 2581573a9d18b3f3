//! Personas: the built-in ones (the librarian, the author) and a user's own.

use super::{Chat, DEFAULT_PERSONA, PERSONA_DESCRIPTION_MAX_CHARS, PERSONA_NAME_MAX_CHARS};
use crate::domain::Persona;
use crate::domain::{PersonaId, UserId};
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

impl Chat {
    /// Built-in personas and the user's own.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn personas(&self, user_id: UserId) -> Result<Vec<Persona>> {
        Ok(self.store.personas(user_id).await?)
    }

    /// One persona the user may see.
    ///
    /// # Errors
    ///
    /// `NotFound` for a persona the user cannot see; `Internal` when the database fails.
    pub async fn persona(&self, user_id: UserId, id: PersonaId) -> Result<Persona> {
        self.store
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
        self.store.delete_persona(id, user_id).await?;
        Ok(())
    }

    pub(super) async fn check_persona(
        &self,
        user_id: UserId,
        persona_id: Option<PersonaId>,
    ) -> Result<Option<PersonaId>> {
        match persona_id {
            None => Ok(None),
            Some(id) => match self.store.persona(id, user_id).await? {
                Some(_) => Ok(Some(id)),
                None => Err(Error::invalid(
                    "persona_id",
                    "角色不存在",
                    "No such persona",
                )),
            },
        }
    }

    pub(super) async fn persona_of(&self, target: &crate::store::ReplyTarget) -> Result<Persona> {
        if let Some(id) = target.persona_id {
            if let Some(persona) = self.store.persona(id, target.user_id).await? {
                return Ok(persona);
            }
        }
        self.builtin_persona(DEFAULT_PERSONA)
            .await?
            .ok_or_else(|| Error::internal("the built-in librarian persona is missing"))
    }

    /// A built-in persona by key. Built-ins change only with a migration, so they are
    /// kept in memory once read.
    pub(super) async fn builtin_persona(&self, key: &str) -> Result<Option<Persona>> {
        if let Some(persona) = self.builtin_personas.get(key) {
            return Ok(Some(persona));
        }
        let found = self.store.builtin_persona(key).await?;
        if let Some(persona) = &found {
            self.builtin_personas
                .insert(key.to_owned(), persona.clone());
        }
        Ok(found)
    }
}
