-- 0003_runs_waiting.sql (PostgreSQL; as migrations/sqlite/0003): a queued
-- run may wait for its environment (its dataset unavailable at resume):
-- `waiting` says why (NULL = not waiting), a claim skips the run until
-- `not_before` (ms since the epoch; NULL = at once), and `waits` counts
-- its waits (the next one is longer).
ALTER TABLE runs ADD COLUMN waiting TEXT;
ALTER TABLE runs ADD COLUMN not_before BIGINT;
ALTER TABLE runs ADD COLUMN waits BIGINT NOT NULL DEFAULT 0
    CHECK (waits >= 0);
