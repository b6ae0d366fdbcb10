-- Ranked choice, a quorum, scheduled and repeating polls, reminders and editing: the same
-- tables and rules as SQLite's 0005, in PostgreSQL's types (see that file for the shape).

ALTER TABLE polls ADD COLUMN ranked SMALLINT NOT NULL DEFAULT 0 CHECK (ranked IN (0, 1));
ALTER TABLE polls ADD COLUMN quorum INTEGER CHECK (quorum IS NULL OR quorum >= 1);
ALTER TABLE polls ADD COLUMN duration INTEGER;
ALTER TABLE polls ADD COLUMN remind_before INTEGER;
ALTER TABLE polls ADD COLUMN starts_at DOUBLE PRECISION;
ALTER TABLE polls ADD COLUMN repeat_every INTEGER CHECK (repeat_every IS NULL OR repeat_every >= 3600);
ALTER TABLE polls ADD COLUMN series_id BIGINT;
ALTER TABLE polls ADD COLUMN series_copy INTEGER;
ALTER TABLE polls ADD COLUMN cancelled_at DOUBLE PRECISION;
ALTER TABLE polls ADD COLUMN cancelled_by BIGINT;
ALTER TABLE polls ADD COLUMN edited_at DOUBLE PRECISION;

ALTER TABLE poll_options ADD COLUMN removed_at DOUBLE PRECISION;

CREATE INDEX polls_by_series ON polls (series_id) WHERE series_id IS NOT NULL;

CREATE TABLE ballots (
    poll_id      BIGINT NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL,
    ranking      TEXT NOT NULL CHECK (length(ranking) BETWEEN 1 AND 100),
    first_choice INTEGER NOT NULL,
    cast_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (poll_id, user_id)
);

CREATE INDEX ballots_by_first ON ballots (poll_id, first_choice);

-- As for votes: the poll row is read FOR SHARE, so a close waits for ballots in flight.
CREATE FUNCTION ballots_rules() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p polls%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT * INTO p FROM polls WHERE id = OLD.poll_id FOR SHARE;
        IF FOUND AND p.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'poll_closed';
        END IF;
        RETURN OLD;
    END IF;
    SELECT * INTO p FROM polls WHERE id = NEW.poll_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key refuses it
    END IF;
    IF p.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'poll_closed';
    END IF;
    IF TG_OP = 'INSERT' AND p.ranked <> 1 THEN
        RAISE EXCEPTION 'not_ranked';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ballots_rules BEFORE INSERT OR UPDATE OR DELETE ON ballots
    FOR EACH ROW EXECUTE FUNCTION ballots_rules();

-- Votes: a removed answer is refused, whatever button the click came from.
CREATE OR REPLACE FUNCTION votes_rules() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p polls%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT * INTO p FROM polls WHERE id = OLD.poll_id FOR SHARE;
        IF FOUND AND p.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'poll_closed';
        END IF;
        RETURN OLD;
    END IF;
    SELECT * INTO p FROM polls WHERE id = NEW.poll_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF p.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'poll_closed';
    END IF;
    IF EXISTS (SELECT 1 FROM poll_options o
                WHERE o.poll_id = NEW.poll_id AND o.position = NEW.option AND o.removed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'option_removed';
    END IF;
    IF NEW.slot <> (CASE p.multiple WHEN 1 THEN NEW.option ELSE 0 END) THEN
        RAISE EXCEPTION 'bad_slot';
    END IF;
    IF TG_OP = 'INSERT' AND p.max_choices IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(NEW.poll_id # (NEW.user_id << 1));
        IF (SELECT count(*) FROM votes v WHERE v.poll_id = NEW.poll_id AND v.user_id = NEW.user_id)
           >= p.max_choices THEN
            RAISE EXCEPTION 'max_choices';
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- The click, as in 0001, now also refusing a removed answer and a click past the deadline as
-- stored: /poll edit may move a deadline, and another process's copy of the poll may be older.
CREATE OR REPLACE FUNCTION quorum_cast_vote(p_poll BIGINT, p_user BIGINT, p_option INTEGER, p_now DOUBLE PRECISION)
RETURNS TABLE (refusal TEXT, change TEXT, choices INTEGER[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p polls%ROWTYPE;
    removed DOUBLE PRECISION;
    previous INTEGER;
BEGIN
    SELECT * INTO p FROM polls WHERE id = p_poll FOR SHARE;
    IF FOUND THEN
        SELECT o.removed_at INTO removed FROM poll_options o WHERE o.poll_id = p_poll AND o.position = p_option;
    END IF;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'foreign_key'::TEXT, NULL::TEXT, NULL::INTEGER[];
        RETURN;
    END IF;
    IF p.closed_at IS NOT NULL OR (p.closes_at IS NOT NULL AND p.closes_at <= p_now) THEN
        RETURN QUERY SELECT 'poll_closed'::TEXT, NULL::TEXT, NULL::INTEGER[];
        RETURN;
    END IF;
    IF removed IS NOT NULL THEN
        RETURN QUERY SELECT 'option_removed'::TEXT, NULL::TEXT, NULL::INTEGER[];
        RETURN;
    END IF;
    IF p.ranked = 1 THEN
        RETURN QUERY SELECT 'ranked'::TEXT, NULL::TEXT, NULL::INTEGER[];
        RETURN;
    END IF;
    IF p.multiple = 1 THEN
        DELETE FROM votes v WHERE v.poll_id = p_poll AND v.user_id = p_user AND v.slot = p_option;
        IF FOUND THEN
            change := 'removed';
        ELSE
            IF p.max_choices IS NOT NULL THEN
                PERFORM pg_advisory_xact_lock(p_poll # (p_user << 1));
                IF (SELECT count(*) FROM votes v WHERE v.poll_id = p_poll AND v.user_id = p_user) >= p.max_choices THEN
                    RETURN QUERY SELECT 'max_choices'::TEXT, NULL::TEXT, NULL::INTEGER[];
                    RETURN;
                END IF;
            END IF;
            INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (p_poll, p_user, p_option, p_option, p_now);
            change := 'added';
        END IF;
        RETURN QUERY SELECT NULL::TEXT, change,
            ARRAY(SELECT v.option FROM votes v WHERE v.poll_id = p_poll AND v.user_id = p_user ORDER BY v.option);
        RETURN;
    END IF;
    SELECT v.option INTO previous FROM votes v WHERE v.poll_id = p_poll AND v.user_id = p_user AND v.slot = 0;
    IF previous = p_option THEN
        DELETE FROM votes v WHERE v.poll_id = p_poll AND v.user_id = p_user AND v.slot = 0;
        RETURN QUERY SELECT NULL::TEXT, 'removed'::TEXT, ARRAY[]::INTEGER[];
        RETURN;
    END IF;
    INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (p_poll, p_user, 0, p_option, p_now)
        ON CONFLICT (poll_id, user_id, slot) DO UPDATE SET option = excluded.option, voted_at = excluded.voted_at;
    RETURN QUERY SELECT NULL::TEXT, CASE WHEN previous IS NULL THEN 'added' ELSE 'moved' END, ARRAY[p_option];
END $$;

CREATE TABLE poll_jobs (
    poll_id     BIGINT NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('post', 'remind')),
    due_at      DOUBLE PRECISION NOT NULL,
    claim_until DOUBLE PRECISION,
    claimed_by  TEXT,
    started_at  DOUBLE PRECISION,
    attempts    INTEGER NOT NULL DEFAULT 0,
    message_id  BIGINT,
    done_at     DOUBLE PRECISION,
    outcome     TEXT,
    PRIMARY KEY (poll_id, kind)
);

CREATE INDEX poll_jobs_pending ON poll_jobs (due_at) WHERE done_at IS NULL;

CREATE TABLE poll_edits (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    poll_id   BIGINT NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    edited_at DOUBLE PRECISION NOT NULL,
    user_id   BIGINT NOT NULL,
    change    TEXT NOT NULL
);

CREATE INDEX poll_edits_by_poll ON poll_edits (poll_id, edited_at);
