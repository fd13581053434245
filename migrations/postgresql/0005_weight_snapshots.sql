-- 0005_weight_snapshots.sql (PostgreSQL; as migrations/sqlite/0005): the
-- first layer's weights at some period ends (at most 100 a run and at most
-- 32 MiB of them, chosen from the period count and the snapshot's size:
-- engine/wsnap.h), kept 8-bit with one scale per tile in `data`
-- (wsnap_encode's format). A snapshot is written in the transaction of its
-- period's row and replaced with it when a resumed run redoes the period;
-- it goes with its run.
CREATE TABLE weight_snapshots (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    period BIGINT NOT NULL CHECK (period >= 1),
    step   BIGINT NOT NULL CHECK (step >= 0),
    data   BYTEA  NOT NULL,
    PRIMARY KEY (run_id, period)
);
