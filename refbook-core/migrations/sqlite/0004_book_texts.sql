-- A book's own text (fourth round). Keep in step with the other dialect's 0004.

-- One row per stored text: the library's (owner_id NULL) or a reader's own copy. A text
-- is written whole in one transaction (its sections and chunks with it), and replaces the
-- previous text of the same book and owner in that transaction, so readers only ever see
-- a complete text. Deleting the user deletes their copies.
CREATE TABLE book_texts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    isbn       TEXT NOT NULL,
    owner_id   INTEGER REFERENCES users(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    format     TEXT NOT NULL,
    chars      INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX book_texts_library ON book_texts(isbn) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX book_texts_reader ON book_texts(isbn, owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX book_texts_owner ON book_texts(owner_id);

CREATE TABLE book_text_sections (
    text_id    INTEGER NOT NULL REFERENCES book_texts(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    title      TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char   INTEGER NOT NULL,
    PRIMARY KEY (text_id, idx)
);

CREATE TABLE book_text_chunks (
    text_id    INTEGER NOT NULL REFERENCES book_texts(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    section    INTEGER NOT NULL,
    start_char INTEGER NOT NULL,
    end_char   INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (text_id, idx)
);
