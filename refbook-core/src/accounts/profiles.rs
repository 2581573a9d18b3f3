//! The account's owner at work on it: the profile and today's usage, profile changes,
//! the password, deleting the account; a public profile; the local user of a front end
//! that has no logins (the CLI, embedders).

use super::{
    validate, Accounts, AuthUser, LoginPayload, Profile, ProfileUpdate, PublicUser, Usage, User,
};
use crate::error::{Error, Result};
use crate::store::{unique_key, NewUser, ProfileChange};

impl Accounts {
    /// The caller with today's usage.
    ///
    /// # Errors
    ///
    /// `Internal` when the database fails.
    pub async fn profile(&self, auth: &AuthUser) -> Result<Profile> {
        let used = self
            .store
            .usage_on(auth.id(), &self.now().utc_day())
            .await?;
        Ok(Profile {
            user: User::from(&auth.user),
            usage: Usage {
                period: "day",
                used_tokens: used,
                limit_tokens: (self.daily_token_quota > 0).then_some(self.daily_token_quota),
            },
        })
    }

    /// Changes nickname, avatar or email.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad nickname, avatar URL or email, `Conflict` for an email
    /// already taken; `Internal` when the database fails.
    pub async fn update_profile(&self, auth: &AuthUser, update: ProfileUpdate) -> Result<User> {
        let change = ProfileChange {
            nickname: update
                .nickname
                .as_deref()
                .map(validate::nickname)
                .transpose()?,
            avatar_url: match update.avatar_url {
                Some(Some(url)) => Some(validate::avatar_url(&url)?),
                Some(None) => Some(None),
                None => None,
            },
            email: match update.email {
                Some(Some(email)) => Some(validate::email(&email)?),
                Some(None) => Some(None),
                None => None,
            },
        };
        let user = self
            .store
            .update_profile(auth.id(), change, self.now())
            .await?;
        // Cached callers carry the old profile.
        self.sessions.revoke_user(auth.id());
        Ok(User::from(&user))
    }

    /// Changes the password after checking the old one; ends every session and returns a
    /// fresh login for the caller.
    ///
    /// # Errors
    ///
    /// `Unauthorized` for a wrong old password, `InvalidInput` for a bad new one;
    /// `Internal` when the database fails.
    pub async fn change_password(
        &self,
        auth: &AuthUser,
        old_password: String,
        new_password: String,
    ) -> Result<LoginPayload> {
        validate::password("new_password", &new_password)?;
        let user = self
            .check_password(Some(auth.user.clone()), old_password)
            .await?;
        let hash = self.passwords.hash(new_password).await?;
        self.store
            .set_password_hash(user.id, &hash, self.now())
            .await?;
        self.store.delete_user_sessions(user.id, None).await?;
        self.sessions.revoke_user(user.id);
        self.start_session(&user).await
    }

    /// Deletes the caller and all their data. Users with a password must give it.
    ///
    /// # Errors
    ///
    /// `Unauthorized` for a wrong password, `InvalidInput` when one is needed and missing;
    /// `Internal` when the database fails.
    pub async fn delete_account(&self, auth: &AuthUser, password: Option<String>) -> Result<()> {
        if auth.user.password_hash.is_some() {
            let password = password.ok_or_else(|| {
                Error::invalid(
                    "password",
                    "请输入密码以确认删除",
                    "Enter your password to confirm",
                )
            })?;
            self.check_password(Some(auth.user.clone()), password)
                .await?;
        }
        self.store.delete_user(auth.id()).await?;
        self.sessions.revoke_user(auth.id());
        Ok(())
    }

    /// Anyone's public profile by username.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown username; `Internal` when the database fails.
    pub async fn public_profile(&self, username: &str) -> Result<PublicUser> {
        let not_found = || Error::not_found("用户", "User");
        let name = validate::username(username).map_err(|_| not_found())?;
        let user = self
            .store
            .user_by_username_key(&unique_key(&name))
            .await?
            .ok_or_else(not_found)?;
        Ok(PublicUser::from(&user))
    }

    /// The account a front end on this machine acts as (the CLI's `cli.local`, an
    /// embedding program's user): created on first use with no password and no WeChat
    /// identity, so nobody can sign in as it over HTTP. Two processes may ask at once.
    ///
    /// # Errors
    ///
    /// `INVALID_PARAMS` when `username` is not a valid username, `CONFLICT` when it
    /// belongs to an account that can sign in (it is never taken over), store failures.
    pub async fn local_user(&self, username: &str, nickname: &str) -> Result<User> {
        let name = validate::username(username)?;
        let key = unique_key(&name);
        let found = match self.store.user_by_username_key(&key).await? {
            Some(user) => user,
            None => {
                let new = NewUser {
                    username: Some(name),
                    nickname: nickname.to_owned(),
                    ..NewUser::default()
                };
                match self.store.create_user(new, self.now()).await {
                    Ok(user) => return Ok(User::from(&user)),
                    // Another process created it a moment ago.
                    Err(crate::store::StoreError::Conflict(_)) => self
                        .store
                        .user_by_username_key(&key)
                        .await?
                        .ok_or_else(|| Error::internal("the local user vanished"))?,
                    Err(other) => return Err(other.into()),
                }
            }
        };
        if found.password_hash.is_some() || found.wechat_openid.is_some() {
            return Err(crate::store::StoreError::Conflict("username").into());
        }
        Ok(User::from(&found))
    }
}
