-- Personal API keys (third round). Keep in step with the other dialect's 0003.

-- A key is shown once, at creation; only its SHA-256 is kept (keys carry 256 random bits,
-- so a fast hash is enough). Deleting the user deletes their keys.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);
