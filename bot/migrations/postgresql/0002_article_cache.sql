-- Extracted articles and their summaries, by canonical URL, so sharing a link twice within
-- ARTICLE_CACHE_HOURS fetches it once. article_urls maps each URL members shared to it.

CREATE TABLE articles (
    canonical_url TEXT PRIMARY KEY,
    data          TEXT NOT NULL,            -- JSON: the extracted article and its summary
    fetched_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE article_urls (
    url           TEXT PRIMARY KEY,
    canonical_url TEXT NOT NULL REFERENCES articles (canonical_url) ON DELETE CASCADE
);

CREATE INDEX article_urls_by_canonical ON article_urls (canonical_url);
CREATE INDEX articles_by_age ON articles (fetched_at);
