-- Each text's guide (深度解析), built in the background with the model (eighth round).
-- Keep in step with the other dialect's 0008. A guide belongs to one text: a new text
-- (a new id) starts a new guide, and deleting a text deletes its guide. guide_state is
-- NULL until building starts, then building, ready or failed; guide_tokens counts the
-- estimated tokens spent (prompts and summaries), within the configured budget.
ALTER TABLE book_texts ADD COLUMN guide_state TEXT;
ALTER TABLE book_texts ADD COLUMN guide_error TEXT;
ALTER TABLE book_texts ADD COLUMN guide_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE book_texts ADD COLUMN guide_lease_until INTEGER;

-- One summary per section (section = its index), and the whole book's (section = -1).
CREATE TABLE book_guide_entries (
    text_id INTEGER NOT NULL REFERENCES book_texts(id) ON DELETE CASCADE,
    section INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (text_id, section)
);
