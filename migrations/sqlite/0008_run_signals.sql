-- 0008_run_signals.sql (SQLite): what the nodes of one service tell each
-- other about a run through the store (issue 15). cancel_requested: a
-- POST /runs/<id>/cancel of a running run, recorded for whichever node
-- trains it (it stops the run within a second; cleared by a resume).
-- progress_step, progress_period, progress_at: the training node's live
-- progress, written at most once a second (progress_at: ms since the
-- epoch; NULL until the first write), so that GET /runs/<id> on another
-- node shows it. SQLite serves one process: it has no NOTIFY, and its
-- wake-ups stay in that process (migrations/postgresql/0008 has the
-- triggers).
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0
    CHECK (cancel_requested IN (0, 1));
ALTER TABLE runs ADD COLUMN progress_step INTEGER CHECK (progress_step >= 0);
ALTER TABLE runs ADD COLUMN progress_period INTEGER
    CHECK (progress_period >= 0);
ALTER TABLE runs ADD COLUMN progress_at INTEGER;
