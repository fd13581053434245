-- 0009_users.sql (SQLite): users with their own bearer tokens, and the
-- owner of each run, sweep, uploaded dataset and named model (issue 16).
-- A token is "<name>.<secret>" (server/http/auth.h); only the BLAKE2b-256
-- hash of the whole token is kept (token_hash, 32 bytes), never the token.
-- A revoked user keeps its row (revoked_at set): its name stays taken and
-- the resources it owns keep their owner. owner is NULL for what was made
-- without a user (before this migration, with no users configured, or
-- with the shared --token): only admins see those once users exist.

CREATE TABLE users (
    name       TEXT    PRIMARY KEY,
    token_hash BLOB    NOT NULL CHECK (length(token_hash) = 32),
    admin      INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

ALTER TABLE runs ADD COLUMN owner TEXT REFERENCES users (name);
ALTER TABLE sweeps ADD COLUMN owner TEXT REFERENCES users (name);
ALTER TABLE datasets ADD COLUMN owner TEXT REFERENCES users (name);
-- an uploaded dataset every user may read and train on
ALTER TABLE datasets ADD COLUMN public INTEGER NOT NULL DEFAULT 0
    CHECK (public IN (0, 1));
ALTER TABLE models ADD COLUMN owner TEXT REFERENCES users (name);

-- a user's own runs and sweeps, newest first (the filtered lists)
CREATE INDEX runs_owner_idx ON runs (owner, id);
CREATE INDEX sweeps_owner_idx ON sweeps (owner, id);
