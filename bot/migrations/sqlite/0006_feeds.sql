-- Feeds: /feed add follows an RSS, Atom or JSON feed in one channel; every item that appears
-- in it later is posted there once, ever.
--
-- A feed row is one feed in one channel (the same feed in two channels is two rows, each with
-- its own items), numbered per server like polls. Checks are claimed like announcements: a
-- conditional UPDATE of next_check_at/claim_until hands each due feed to one process.
CREATE TABLE feeds (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    number         INTEGER NOT NULL,
    channel_id     INTEGER NOT NULL,
    url            TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),  -- the feed's own address
    page_url       TEXT,            -- the page the moderator gave, when the feed was found on it
    title          TEXT NOT NULL DEFAULT '',
    added_by       INTEGER NOT NULL,
    added_at       REAL NOT NULL,
    paused_at      REAL,
    paused_by      INTEGER,         -- NULL with paused_at set: paused by Quorum itself
    paused_reason  TEXT,
    etag           TEXT,            -- conditional GET: what the server last said
    last_modified  TEXT,
    next_check_at  REAL NOT NULL,
    claim_until    REAL,
    claimed_by     TEXT,
    last_check_at  REAL,
    last_new_at    REAL,            -- when an item last appeared
    failures       INTEGER NOT NULL DEFAULT 0,  -- checks failed in a row
    failing_since  REAL,
    last_error     TEXT,
    notice_sent_at REAL,            -- the one notice a feed paused for failing gets
    UNIQUE (guild_id, number),
    UNIQUE (channel_id, url)
);

CREATE INDEX feeds_due ON feeds (next_check_at) WHERE paused_at IS NULL;

-- Every item ever seen in a feed, by its identity (guid/id, else link, else a hash of title and
-- link; never its date). 'seen': present when the feed was added, never posted. 'pending': new,
-- to be posted oldest first (seq). 'posted'/'skipped': done, for good. post_started_at is set
-- before sending, so a retry after a crash looks for the message first.
CREATE TABLE feed_items (
    id              INTEGER PRIMARY KEY,
    feed_id         INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    item_key        TEXT NOT NULL CHECK (length(item_key) BETWEEN 1 AND 512),
    seq             INTEGER NOT NULL,   -- the order to post in: oldest first
    title           TEXT,
    link            TEXT,
    summary         TEXT,
    published       TEXT,
    found_at        REAL NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('seen', 'pending', 'posted', 'skipped')),
    claim_until     REAL,
    claimed_by      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    post_started_at REAL,
    post_marker     TEXT,               -- what the message sent carries, to find it after a crash
    message_id      INTEGER,
    done_at         REAL,
    outcome         TEXT,
    UNIQUE (feed_id, item_key)
);

CREATE INDEX feed_items_pending ON feed_items (feed_id, seq) WHERE state = 'pending';
-- A feed's items in order: the next seq to give, and forgetting the oldest done ones.
CREATE INDEX feed_items_order ON feed_items (feed_id, seq);
