-- 0007_nodes.sql (PostgreSQL; as migrations/sqlite/0007): several nodes
-- (mnistd processes) on one database. A node registers itself in `nodes`
-- at start and renews heartbeat_at every second (server/jobs/heartbeat.c);
-- a claimed run carries the name of the node
-- that trains it (`node`, NULL while queued) and a lease
-- (lease_expires_at, ms since the epoch) that the node's heartbeat renews.
-- A run whose lease expired lost its node: any live node requeues it
-- (store_lease_reap), and `crashes` counts those losses, so that a run
-- whose training kills its node ends failed after a few of them.
-- `attempts` counts the claims (how many times a node started training
-- it), as River's attempt, Oban's attempt and graphile-worker's attempts.
CREATE TABLE nodes (
    name         TEXT   PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    workers      BIGINT NOT NULL CHECK (workers >= 0),
    busy         BIGINT NOT NULL DEFAULT 0 CHECK (busy >= 0)
);

ALTER TABLE runs ADD COLUMN node TEXT;
ALTER TABLE runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0
    CHECK (attempts >= 0);
ALTER TABLE runs ADD COLUMN crashes BIGINT NOT NULL DEFAULT 0
    CHECK (crashes >= 0);
ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT;

-- the heartbeat's renewal and a leave (a node's running runs), the reaper
-- (running runs by lease)
CREATE INDEX runs_node_idx ON runs (node) WHERE status = 'running';
CREATE INDEX runs_lease_idx ON runs (lease_expires_at)
    WHERE status = 'running';
