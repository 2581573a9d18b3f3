//! Local mode acts as one local user, created on first use. It has no password, so it
//! can never sign in over HTTP even when the database is shared with a server.

use refbook_core::accounts::User;
use refbook_core::Refbook;

use crate::failure::Failure;

/// The local user's username.
pub const LOCAL_USERNAME: &str = "cli.local";

/// The local user, created if missing.
pub async fn local_user(refbook: &Refbook) -> Result<User, Failure> {
    refbook
        .accounts()
        .local_user(LOCAL_USERNAME, "终端读者")
        .await
        .map_err(|e| {
            Failure::plain(format!(
                "cannot prepare the local user {LOCAL_USERNAME}: {e}"
            ))
        })
}
