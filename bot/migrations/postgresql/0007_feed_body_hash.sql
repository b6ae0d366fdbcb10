-- A feed whose server sends no validators (no ETag, no Last-Modified) answers 200 with the same
-- body at every check: its SHA-256 is kept, and the same body again is not parsed.
ALTER TABLE feeds ADD COLUMN body_hash TEXT;
