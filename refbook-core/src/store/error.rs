//! Failures of the store.

use crate::error::{Error, ErrorKind};

/// A failure of a [`Store`](super::Store) operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken; names the field (`username`, `email`, …).
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The row to change does not exist.
    #[error("no such record")]
    NotFound,
    /// The database failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded (a JSON column).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database URL is not usable.
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
}

/// Fields with a unique constraint, as named in constraint messages.
const UNIQUE_FIELDS: [&str; 3] = ["username", "email", "wechat_openid"];

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
                if let Some(field) = UNIQUE_FIELDS.iter().find(|f| text.contains(*f)) {
                    return Self::Conflict(field);
                }
                return Self::Conflict("value");
            }
        }
        Self::Database(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict("username") => Error::new(
                ErrorKind::Conflict,
                "用户名已被占用",
                "That username is taken",
            )
            .with_field("username"),
            StoreError::Conflict("email") => Error::new(
                ErrorKind::Conflict,
                "邮箱已被使用",
                "That email is already in use",
            )
            .with_field("email"),
            StoreError::Conflict(_) => {
                Error::new(ErrorKind::Conflict, "记录已存在", "That already exists")
            }
            StoreError::NotFound => Error::not_found("记录", "Record"),
            other => Error::internal(other),
        }
    }
}
