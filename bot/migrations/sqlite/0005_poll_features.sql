-- Ranked choice, a quorum, scheduled and repeating polls, reminders and editing.
--
-- A scheduled poll is a poll row from the start: it has its number (so it can be named in
-- /poll cancel) and no message until it is posted. Each copy of a repeating poll is a row of
-- its own, with its own number and votes; the next copy exists, unposted, from the moment the
-- previous one is posted, so there is always exactly one copy to post next.

ALTER TABLE polls ADD COLUMN ranked INTEGER NOT NULL DEFAULT 0 CHECK (ranked IN (0, 1));
ALTER TABLE polls ADD COLUMN quorum INTEGER CHECK (quorum IS NULL OR quorum >= 1);
ALTER TABLE polls ADD COLUMN duration INTEGER;        -- seconds; what closes_at is set from when posted
ALTER TABLE polls ADD COLUMN remind_before INTEGER;   -- seconds before closes_at to remind
ALTER TABLE polls ADD COLUMN starts_at REAL;          -- scheduled: when to post it; NULL: posted at once
ALTER TABLE polls ADD COLUMN repeat_every INTEGER CHECK (repeat_every IS NULL OR repeat_every >= 3600);
ALTER TABLE polls ADD COLUMN series_id INTEGER;       -- repeating: the id of the series' first copy
ALTER TABLE polls ADD COLUMN series_copy INTEGER;     -- repeating: 1 for the first copy, 2, …
ALTER TABLE polls ADD COLUMN cancelled_at REAL;       -- a scheduled copy that will never be posted
ALTER TABLE polls ADD COLUMN cancelled_by INTEGER;
ALTER TABLE polls ADD COLUMN edited_at REAL;

-- An answer removed by /poll edit keeps its place and number: votes and ballots refer to
-- answers by position, and a stale button on an old message must find "removed", not the
-- next answer along.
ALTER TABLE poll_options ADD COLUMN removed_at REAL;

CREATE INDEX polls_by_series ON polls (series_id) WHERE series_id IS NOT NULL;

-- Ranked choice: one ballot per member, the answers' positions most preferred first
-- ("3,0,7"), replaced as a whole. first_choice repeats the first of them for counting first
-- preferences without reading the rankings.
CREATE TABLE ballots (
    poll_id      INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL,
    ranking      TEXT NOT NULL CHECK (length(ranking) BETWEEN 1 AND 100),
    first_choice INTEGER NOT NULL,
    cast_at      REAL NOT NULL,
    PRIMARY KEY (poll_id, user_id)
) WITHOUT ROWID;

CREATE INDEX ballots_by_first ON ballots (poll_id, first_choice);

CREATE TRIGGER ballots_insert_rules BEFORE INSERT ON ballots
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
    SELECT RAISE(ABORT, 'not_ranked')
     WHERE (SELECT ranked FROM polls WHERE id = NEW.poll_id) IS NOT 1;
END;

CREATE TRIGGER ballots_update_rules BEFORE UPDATE ON ballots
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
END;

CREATE TRIGGER ballots_delete_rules BEFORE DELETE ON ballots
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = OLD.poll_id) IS NOT NULL;
END;

-- A vote for a removed answer is refused, whatever button it came from.
DROP TRIGGER votes_insert_rules;
CREATE TRIGGER votes_insert_rules BEFORE INSERT ON votes
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
    SELECT RAISE(ABORT, 'option_removed')
     WHERE (SELECT removed_at FROM poll_options WHERE poll_id = NEW.poll_id AND position = NEW.option) IS NOT NULL;
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

DROP TRIGGER votes_update_rules;
CREATE TRIGGER votes_update_rules BEFORE UPDATE ON votes
BEGIN
    SELECT RAISE(ABORT, 'poll_closed')
     WHERE (SELECT closed_at FROM polls WHERE id = NEW.poll_id) IS NOT NULL;
    SELECT RAISE(ABORT, 'option_removed')
     WHERE (SELECT removed_at FROM poll_options WHERE poll_id = NEW.poll_id AND position = NEW.option) IS NOT NULL;
    SELECT RAISE(ABORT, 'bad_slot')
      FROM polls p
     WHERE p.id = NEW.poll_id
       AND NEW.slot <> CASE p.multiple WHEN 1 THEN NEW.option ELSE 0 END;
END;

-- Messages Quorum sends for a poll at a time of its own, exactly once across processes:
-- 'post' (a scheduled poll appears), 'remind' (the reminder before the deadline). Claimed
-- with a lease like announcements; started_at is set before sending (with the message's
-- nonce, and a search of the channel on a retry, nothing is sent twice).
CREATE TABLE poll_jobs (
    poll_id     INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('post', 'remind')),
    due_at      REAL NOT NULL,
    claim_until REAL,
    claimed_by  TEXT,
    started_at  REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    message_id  INTEGER,
    done_at     REAL,
    outcome     TEXT,                 -- 'sent', 'skipped', 'failed: …' once done
    PRIMARY KEY (poll_id, kind)
) WITHOUT ROWID;

CREATE INDEX poll_jobs_pending ON poll_jobs (due_at) WHERE done_at IS NULL;

-- What /poll edit changed, when and by whom: every change is kept.
CREATE TABLE poll_edits (
    id        INTEGER PRIMARY KEY,
    poll_id   INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    edited_at REAL NOT NULL,
    user_id   INTEGER NOT NULL,
    change    TEXT NOT NULL
);

CREATE INDEX poll_edits_by_poll ON poll_edits (poll_id, edited_at);
