-- Durable replies (second round). Keep in step with the other dialect's 0002.

-- Why a reply ended: stop, length, cancelled, interrupted, error (NULL while generating and
-- for messages that were not generated).
ALTER TABLE messages ADD COLUMN finish_reason TEXT;

-- One row per reply being generated. It is the conversation lock (one row per
-- conversation), the per-user cap (rows per user) and the owner's lease: the owner renews
-- `lease_until` while it generates; once the lease has expired any instance may settle the
-- reply as partial/interrupted and drop the row.
CREATE TABLE reply_claims (
    conversation_id BIGINT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id      BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    owner           TEXT NOT NULL,
    lease_until     BIGINT NOT NULL
);
CREATE INDEX reply_claims_user ON reply_claims(user_id);
CREATE INDEX reply_claims_message ON reply_claims(message_id);
-- The sweep looks for replies still generating; keep that cheap on big tables.
CREATE INDEX messages_generating ON messages(id) WHERE status = 'generating';

-- One stateless conversation per user and book: older duplicates become ordinary ones.
UPDATE conversations SET origin = 'api'
 WHERE origin = 'chat_stream'
   AND id NOT IN (SELECT MAX(id) FROM conversations WHERE origin = 'chat_stream' GROUP BY user_id, isbn);
CREATE UNIQUE INDEX conversations_stateless ON conversations(user_id, isbn) WHERE origin = 'chat_stream';
