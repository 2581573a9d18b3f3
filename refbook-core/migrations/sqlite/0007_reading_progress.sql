-- How far each reader has read each book (seventh round). Keep in step with the other
-- dialect's 0007. The mark is kept as the reader gave it — the last section read (by
-- index) or a position in characters — and resolved against the text the reader sees when
-- it is used, so a replaced text keeps the reader's place by section. Deleting the user
-- deletes their progress.
CREATE TABLE reading_progress (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    isbn       TEXT NOT NULL,
    section    INTEGER,
    position   INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, isbn),
    CHECK ((section IS NULL) <> (position IS NULL))
);
