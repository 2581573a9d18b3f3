-- Books' texts indexed in the background, and their vectors (sixth round). Keep in step
-- with the other dialect's 0006.

-- A new text is written whole with state 'indexing', beside the text that serves; once its
-- vectors are in (or at once when there is no embedder) it becomes 'ready' and the old one
-- is dropped, in one transaction. 'failed' keeps the reason; the old text goes on serving.
-- A worker holds a text while it works on it (lease_until, Unix ms); a lease that runs out
-- (a crash, a restart) lets any instance take the work up where the vectors stop.
ALTER TABLE book_texts ADD COLUMN state TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE book_texts ADD COLUMN error TEXT;
ALTER TABLE book_texts ADD COLUMN embed_model TEXT;
-- How many chunks the text has, and how many of them have a vector (kept with the rows,
-- in the same transactions), so a search or the work's poll reads two numbers instead of
-- counting rows.
ALTER TABLE book_texts ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE book_texts ADD COLUMN vector_count INTEGER NOT NULL DEFAULT 0;
UPDATE book_texts SET chunk_count =
    (SELECT COUNT(*) FROM book_text_chunks c WHERE c.text_id = book_texts.id);
ALTER TABLE book_texts ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- One serving text, and one on its way, per book and owner.
DROP INDEX book_texts_library;
DROP INDEX book_texts_reader;
CREATE UNIQUE INDEX book_texts_library_ready ON book_texts(isbn)
    WHERE owner_id IS NULL AND state = 'ready';
CREATE UNIQUE INDEX book_texts_reader_ready ON book_texts(isbn, owner_id)
    WHERE owner_id IS NOT NULL AND state = 'ready';
CREATE UNIQUE INDEX book_texts_library_next ON book_texts(isbn)
    WHERE owner_id IS NULL AND state <> 'ready';
CREATE UNIQUE INDEX book_texts_reader_next ON book_texts(isbn, owner_id)
    WHERE owner_id IS NOT NULL AND state <> 'ready';

-- A chunk's vector (little-endian f32s) by the model named in book_texts.embed_model.
CREATE TABLE book_text_vectors (
    text_id INTEGER NOT NULL REFERENCES book_texts(id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (text_id, idx)
);
