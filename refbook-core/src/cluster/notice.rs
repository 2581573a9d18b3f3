//! [`Notice`]: what one instance tells the others on the control channel, and its JSON
//! form (`{"from": INSTANCE, "kind": …, …}`).

use crate::domain::{ConversationId, UserId};
use serde::{Deserialize, Serialize};

/// A notice to every other instance. Pub/Sub delivers it at once to instances connected
/// to Redis; each kind says what covers an instance that missed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// Stop the reply generating in the conversation (`stop/`, or the conversation was
    /// deleted): its owner ends it as `partial` (`cancelled`). Missed, the reply runs to
    /// its end.
    Stop {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// The conversation's messages changed (a new question, a regeneration, a deletion):
    /// forget its finished reply kept in memory. Missed, that copy expires after 10
    /// minutes.
    Changed {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// The user's sessions or keys were revoked: forget their cached credentials. Missed,
    /// the cache's entries expire (`REFBOOK_AUTH_CACHE_SECS`).
    Revoked {
        /// The user.
        user_id: UserId,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    notice: Notice,
}

/// The notice as sent by `from`.
pub(crate) fn encode(from: &str, notice: &Notice) -> String {
    serde_json::to_string(&Envelope {
        from: from.to_owned(),
        notice: notice.clone(),
    })
    .unwrap_or_default()
}

/// The sender and the notice of a payload (`None` if unreadable).
pub(crate) fn decode(payload: &[u8]) -> Option<(String, Notice)> {
    let envelope: Envelope = serde_json::from_slice(payload).ok()?;
    Some((envelope.from, envelope.notice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_name_their_sender() {
        for notice in [
            Notice::Stop {
                conversation_id: ConversationId::new(7),
            },
            Notice::Changed {
                conversation_id: ConversationId::new(8),
            },
            Notice::Revoked {
                user_id: UserId::new(9),
            },
        ] {
            let text = encode("a-1", &notice);
            assert_eq!(decode(text.as_bytes()), Some(("a-1".into(), notice)));
        }
        assert_eq!(
            encode(
                "b",
                &Notice::Revoked {
                    user_id: UserId::new(3)
                }
            ),
            r#"{"from":"b","kind":"revoked","user_id":3}"#
        );
        assert!(decode(b"{\"from\":\"b\",\"kind\":\"reboot\"}").is_none());
    }
}
