-- 0006_sweeps.sql (SQLite): hyperparameter searches (POST /sweeps, server/jobs/
-- sweep.h). A sweep holds its resolved request (params_json) and how many
-- trials it has created so far (next_trial: trial numbers 0, 1, ... are
-- handed out in order, once each, so that a sweep resumed after a crash
-- creates exactly the trials an uninterrupted one would). Each trial is an
-- ordinary run with `sweep` and `trial` set. A trial stopped by the early
-- stopping rule ends with the new run status 'pruned'.

CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    status      TEXT    NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    params_json TEXT    NOT NULL,
    trials      INTEGER NOT NULL CHECK (trials >= 1),
    next_trial  INTEGER NOT NULL DEFAULT 0
        CHECK (next_trial >= 0 AND next_trial <= trials),
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    error       TEXT
);

CREATE INDEX sweeps_status_idx ON sweeps (status, id);

-- The run status 'pruned'. SQLite cannot alter a CHECK constraint, and a
-- rebuild of runs would need foreign keys off (its DROP would cascade to
-- periods, checkpoints and confusions), which a migration's transaction
-- cannot do. Widening a CHECK is the case SQLite's ALTER TABLE
-- documentation (section 7, "Making Other Kinds Of Table Schema Changes")
-- allows through writable_schema: the stored rows are unchanged and all
-- of them satisfy the wider constraint. RESET reloads the schema on this
-- connection (the ADD COLUMNs below must see the new text); the DDL below
-- changes the schema cookie, so every other connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, '''cancelled''))', '''cancelled'', ''pruned''))')
WHERE type = 'table' AND name = 'runs';
PRAGMA writable_schema = RESET;

-- the edit above happened (else this insert fails the migration)
CREATE TEMP TABLE migration_0006_check (ok INTEGER CHECK (ok));
INSERT INTO migration_0006_check
SELECT instr(sql, '''pruned''') > 0 FROM sqlite_master
WHERE type = 'table' AND name = 'runs';
DROP TABLE migration_0006_check;

-- a trial's sweep and its number in the sweep (both NULL for other runs)
ALTER TABLE runs ADD COLUMN sweep INTEGER REFERENCES sweeps (id);
ALTER TABLE runs ADD COLUMN trial INTEGER CHECK (trial >= 0);

-- a sweep's trials in order; one run per trial number
CREATE UNIQUE INDEX runs_sweep_trial_idx ON runs (sweep, trial)
    WHERE sweep IS NOT NULL;
