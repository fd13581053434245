-- 0001_init.sql: the first schema of mnistd's store: runs, their per-period
-- metrics, confusion matrices and checkpoints, and uploaded datasets.
-- Times are milliseconds since the epoch (NULL when unset); a NULL metric
-- means "not measured yet" (the C side maps it to NaN).

CREATE TABLE runs (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    status                   TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
                          'cancelled')),
    model                    TEXT    NOT NULL,
    dataset                  TEXT    NOT NULL,
    params_json              TEXT    NOT NULL,
    step                     INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0),
    steps                    INTEGER NOT NULL CHECK (steps >= 0),
    period                   INTEGER NOT NULL DEFAULT 0 CHECK (period >= 0),
    periods                  INTEGER NOT NULL CHECK (periods >= 0),
    validation_accuracy      REAL,
    validation_log_loss      REAL,
    test_accuracy            REAL,
    created_at               INTEGER NOT NULL,
    started_at               INTEGER,
    finished_at              INTEGER,
    error                    TEXT,
    best_validation_log_loss REAL
);

-- Listing by status, newest first (id DESC), and the claim of the oldest
-- queued run (status = 'queued' ORDER BY id).
CREATE INDEX runs_status_idx ON runs (status, id);

CREATE TABLE periods (
    run_id              INTEGER NOT NULL
        REFERENCES runs (id) ON DELETE CASCADE,
    period              INTEGER NOT NULL CHECK (period >= 1),
    step                INTEGER NOT NULL CHECK (step >= 0),
    train_log_loss      REAL,
    validation_log_loss REAL,
    validation_accuracy REAL,
    seconds             REAL,
    PRIMARY KEY (run_id, period)
);

-- counts: 100 little-endian uint32, [true label][predicted label].
CREATE TABLE confusions (
    run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    set_name TEXT    NOT NULL CHECK (set_name IN ('validation', 'test')),
    counts   BLOB    NOT NULL CHECK (length(counts) = 400),
    accuracy REAL,
    log_loss REAL,
    examples INTEGER NOT NULL CHECK (examples >= 0),
    PRIMARY KEY (run_id, set_name)
);

CREATE TABLE checkpoints (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('latest', 'best')),
    step       INTEGER NOT NULL CHECK (step >= 0),
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, kind)
);

-- pixels: examples * rows * cols bytes; labels: examples bytes (0..9).
-- The small columns come first so that listing never reads the BLOBs.
CREATE TABLE datasets (
    name       TEXT    PRIMARY KEY,
    examples   INTEGER NOT NULL CHECK (examples > 0),
    "rows"     INTEGER NOT NULL CHECK ("rows" > 0),
    cols       INTEGER NOT NULL CHECK (cols > 0),
    created_at INTEGER NOT NULL,
    pixels     BLOB    NOT NULL,
    labels     BLOB    NOT NULL
);
