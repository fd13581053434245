-- 0005_weight_snapshots.sql: the first layer's weights at some period ends
-- (at most 100 a run and at most 32 MiB of them, chosen from the period
-- count and the snapshot's size: engine/wsnap.h), kept 8-bit with one
-- scale per tile in `data` (wsnap_encode's format). A snapshot is written
-- in the transaction of its period's row and replaced with it when a
-- resumed run redoes the period; it goes with its run.
CREATE TABLE weight_snapshots (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    period INTEGER NOT NULL CHECK (period >= 1),
    step   INTEGER NOT NULL CHECK (step >= 0),
    data   BLOB    NOT NULL,
    PRIMARY KEY (run_id, period)
);
