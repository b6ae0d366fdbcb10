-- Pages that could not be processed (no article, too slow, too big), by the URL a member
-- shared, for a few minutes: sharing the same link again answers at once instead of
-- starting the same work again. Rows older than that are deleted as new ones arrive.

CREATE TABLE article_failures (
    url       TEXT PRIMARY KEY,
    message   TEXT NOT NULL,
    failed_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX article_failures_by_age ON article_failures (failed_at);
