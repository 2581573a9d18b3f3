-- Responses of the OpenAI face's Responses API kept for `previous_response_id` and
-- `GET /v1/responses/{id}` (ninth round). Keep in step with the other dialect's 0009.
-- A response holds its whole exchange (earlier turns and this turn's input, as JSON
-- `[[role, text], …]`), its answer and the passages it was given (JSON), so a follow-up
-- reads one row. Deleting the user deletes their responses.
CREATE TABLE responses (
    id           TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model        TEXT NOT NULL,
    instructions TEXT,
    previous_id  TEXT,
    exchange     TEXT NOT NULL,
    output       TEXT NOT NULL,
    sources      TEXT NOT NULL,
    status       TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX responses_user ON responses(user_id, created_at);
