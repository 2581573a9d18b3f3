-- The passages a grounded reply was given, and the ones it cited (fifth round). Keep in
-- step with the other dialect's 0005. JSON text; NULL for a reply given no passages.
ALTER TABLE messages ADD COLUMN sources TEXT;
ALTER TABLE messages ADD COLUMN citations TEXT;
