-- Several processes may see the same poll due at once (PostgreSQL, sharded): the one whose
-- conditional UPDATE sets this lease announces it; the others skip it until the lease runs
-- out, which is how a process that died while announcing is taken over. The owner lets a
-- restarted process take back its own claims at once instead of waiting out the lease.
ALTER TABLE polls ADD COLUMN announce_claim_until REAL;
ALTER TABLE polls ADD COLUMN announce_claimed_by TEXT;
