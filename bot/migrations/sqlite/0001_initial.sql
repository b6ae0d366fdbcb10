-- Polls, their options and votes. Vote rules that must hold under concurrency live here,
-- in keys and triggers, not in Python checks: a race cannot break a constraint.

CREATE TABLE polls (
    id                  INTEGER PRIMARY KEY,
    guild_id            INTEGER NOT NULL,
    number              INTEGER NOT NULL,             -- shown as "Poll #n", counted per server
    channel_id          INTEGER NOT NULL,
    message_id          INTEGER UNIQUE,               -- NULL until the poll message is posted
    creator_id          INTEGER NOT NULL,
    question            TEXT NOT NULL CHECK (length(trim(question)) BETWEEN 1 AND 300),
    multiple            INTEGER NOT NULL DEFAULT 0 CHECK (multiple IN (0, 1)),
    anonymous           INTEGER NOT NULL DEFAULT 0 CHECK (anonymous IN (0, 1)),
    hide_results        INTEGER NOT NULL DEFAULT 0 CHECK (hide_results IN (0, 1)),
    role_id             INTEGER,                      -- only members with this role may vote
    max_choices         INTEGER CHECK (max_choices IS NULL OR (multiple = 1 AND max_choices >= 1)),
    created_at          REAL NOT NULL,
    closes_at           REAL,                         -- NULL: open until closed by hand
    closed_at           REAL,
    closed_by           INTEGER,                      -- NULL when the deadline closed it
    announce_started_at REAL,                         -- set before the announcement is sent
    announcement_id     INTEGER,
    announced_at        REAL,                         -- set once the announcement is known sent
    UNIQUE (guild_id, number)
);

-- The scheduler asks for the earliest deadline of an open, posted poll.
CREATE INDEX polls_deadlines ON polls (closes_at)
    WHERE closed_at IS NULL AND closes_at IS NOT NULL AND message_id IS NOT NULL;
CREATE INDEX polls_unannounced ON polls (closed_at)
    WHERE closed_at IS NOT NULL AND announced_at IS NULL;
CREATE INDEX polls_by_guild ON polls (guild_id, closed_at);

CREATE TABLE poll_options (
    poll_id  INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position BETWEEN 0 AND 24),
    label    TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    PRIMARY KEY (poll_id, position)
) WITHOUT ROWID;

-- One row per (member, slot). Single choice: slot is always 0, so a member holds at most one
-- vote whatever the timing of their clicks. Multiple choice: slot = option, so each answer is
-- held at most once per member.
CREATE TABLE votes (
    poll_id  INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    slot     INTEGER NOT NULL,
    option   INTEGER NOT NULL,
    voted_at REAL NOT NULL,
    PRIMARY KEY (poll_id, user_id, slot),
    FOREIGN KEY (poll_id, option) REFERENCES poll_options (poll_id, position) ON DELETE CASCADE
) WITHOUT ROWID;

-- Tallies read this index alone (covering), so counting a million votes stays fast.
CREATE INDEX votes_by_option ON votes (poll_id, option);

CREATE TRIGGER votes_insert_rules BEFORE INSERT ON votes
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
    SELECT RAISE(ABORT, 'bad_slot')
      FROM polls p
     WHERE p.id = NEW.poll_id
       AND NEW.slot <> CASE p.multiple WHEN 1 THEN NEW.option ELSE 0 END;
    SELECT RAISE(ABORT, 'max_choices')
      FROM polls p
     WHERE p.id = NEW.poll_id AND p.max_choices IS NOT NULL
       AND (SELECT count(*) FROM votes v
             WHERE v.poll_id = NEW.poll_id AND v.user_id = NEW.user_id) >= p.max_choices;
END;

CREATE TRIGGER votes_update_rules BEFORE UPDATE ON votes
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
    SELECT RAISE(ABORT, 'bad_slot')
      FROM polls p
     WHERE p.id = NEW.poll_id
       AND NEW.slot <> CASE p.multiple WHEN 1 THEN NEW.option ELSE 0 END;
END;

-- A closed poll's result is final: removing a vote is refused too. (A cascade from deleting
-- the poll itself passes, because the poll row is already gone.)
CREATE TRIGGER votes_delete_rules BEFORE DELETE ON votes
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = OLD.poll_id) IS NOT NULL;
END;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
