//! Local mode acts as one local user, created on first use. It has no password, so it
//! can never sign in over HTTP even when the database is shared with a server.

use refbook_core::store::{unique_key, NewUser, StoreError, UserRecord};
use refbook_core::timestamp::Timestamp;
use refbook_core::Refbook;

use crate::failure::Failure;

/// The local user's username.
pub const LOCAL_USERNAME: &str = "cli.local";

/// The local user, created if missing.
pub async fn local_user(refbook: &Refbook) -> Result<UserRecord, Failure> {
    let store = refbook.store();
    let fail = |e: StoreError| Failure::plain(format!("cannot prepare the local user: {e}"));
    if let Some(user) = store
        .user_by_username_key(&unique_key(LOCAL_USERNAME))
        .await
        .map_err(fail)?
    {
        return Ok(user);
    }
    let created = store
        .create_user(
            NewUser {
                username: Some(LOCAL_USERNAME.to_owned()),
                nickname: "终端读者".to_owned(),
                ..NewUser::default()
            },
            Timestamp::now(),
        )
        .await;
    match created {
        Ok(user) => Ok(user),
        // Another run created it a moment ago.
        Err(StoreError::Conflict(_)) => store
            .user_by_username_key(&unique_key(LOCAL_USERNAME))
            .await
            .map_err(fail)?
            .ok_or_else(|| Failure::plain("the local user vanished")),
        Err(other) => Err(fail(other)),
    }
}
