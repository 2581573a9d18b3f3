-- Refbook schema (SQLite). Times are Unix milliseconds (INTEGER). Keep in step with
-- migrations/postgres/0001_init.sql: the two differ only in dialect.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT,
    username_key   TEXT UNIQUE,            -- lower-cased username: uniqueness and login
    email          TEXT,
    email_key      TEXT UNIQUE,            -- lower-cased email
    nickname       TEXT NOT NULL,
    avatar_url     TEXT,
    password_hash  TEXT,                   -- NULL for WeChat-only users
    wechat_openid  TEXT UNIQUE,
    wechat_unionid TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- One row per login (a "login session"); deleting it ends its refresh and access tokens.
CREATE TABLE login_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL          -- expiry of its newest refresh token
);
CREATE INDEX login_sessions_user ON login_sessions(user_id);

-- Every refresh token ever issued in a session (SHA-256 of the token, never the token):
-- a used one presented again reveals theft and ends the session.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES login_sessions(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE books (
    isbn         TEXT PRIMARY KEY,         -- ISBN-13, digits only
    isbn10       TEXT,
    title        TEXT NOT NULL,
    subtitle     TEXT,
    authors      TEXT NOT NULL,            -- JSON array of strings
    translators  TEXT NOT NULL,            -- JSON array of strings
    publisher    TEXT,
    published    TEXT,
    pages        INTEGER,
    introduction TEXT,
    author_intro TEXT,
    cover_url    TEXT,                     -- the source's image URL
    tags         TEXT NOT NULL,            -- JSON array of strings
    source       TEXT NOT NULL,
    fetched_at   INTEGER NOT NULL,         -- freshness of the copy
    updated_at   INTEGER NOT NULL
);

-- Cover images fetched once through the cover proxy and kept here (not on disk).
CREATE TABLE book_covers (
    isbn         TEXT PRIMARY KEY REFERENCES books(isbn) ON DELETE CASCADE,
    source_url   TEXT NOT NULL,            -- the URL it came from; a new URL refetches
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    fetched_at   INTEGER NOT NULL
);

-- The local catalogue (imported CSV/JSON), consulted as the `catalog` book source.
CREATE TABLE catalog_books (
    isbn        TEXT PRIMARY KEY,
    data        TEXT NOT NULL,             -- the book as JSON
    imported_at INTEGER NOT NULL
);

CREATE TABLE personas (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER REFERENCES users(id) ON DELETE CASCADE,  -- NULL: built in
    key         TEXT UNIQUE,                                      -- built-ins only
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX personas_user ON personas(user_id);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    isbn       TEXT NOT NULL REFERENCES books(isbn),
    title      TEXT NOT NULL,
    persona_id INTEGER REFERENCES personas(id) ON DELETE SET NULL,
    origin     TEXT NOT NULL DEFAULT 'api',  -- 'api' or 'chat_stream' (stateless endpoint)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_user_activity ON conversations(user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role              TEXT NOT NULL,
    content           TEXT NOT NULL,
    reasoning         TEXT,
    status            TEXT NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    total_tokens      INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);

CREATE TABLE collections (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    isbn       TEXT NOT NULL REFERENCES books(isbn),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, isbn)
);

CREATE TABLE usage_daily (
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day               TEXT NOT NULL,       -- UTC day, YYYY-MM-DD
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);

INSERT INTO personas (user_id, key, name, description, created_at) VALUES
  (NULL, 'librarian', '图书管理员', '熟悉这本书的向导：解答关于内容、人物、背景与主题的问题，引用书中信息并指出不确定之处。', 0),
  (NULL, 'author', '作者', '以这本书作者的身份与读者交谈：讲述创作意图、人物与写作过程，保持作者的口吻。', 0);
