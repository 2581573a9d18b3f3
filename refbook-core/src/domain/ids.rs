//! Typed ids: a user's id cannot be passed where a conversation's is expected, and an
//! argument list cannot flip two of them unnoticed. Each is the database's integer key;
//! JSON shows it as that number, and SQL binds and reads it as one.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id whose database key is `raw`.
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The database key.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;
            /// A decimal key, as in a URL path.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id_type! {
    /// A user (an account: username, WeChat or both).
    UserId
}

id_type! {
    /// A conversation about one book.
    ConversationId
}

id_type! {
    /// A message of a conversation, the user's or a reply.
    MessageId
}

id_type! {
    /// A persona, built in or a user's own.
    PersonaId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_number_in_json_and_in_paths() {
        let id = ConversationId::new(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<ConversationId>("42").unwrap(), id);
        assert_eq!("42".parse::<ConversationId>().unwrap(), id);
        assert!("4x".parse::<ConversationId>().is_err());
        assert_eq!(id.to_string(), "42");
        assert_eq!(i64::from(id), 42);
    }
}
