-- 0010_runs_owner_started.sql (PostgreSQL; as migrations/sqlite/0010):
-- the fair-share claim (store_run_claim) orders queued runs by when their
-- owner was last served, the latest started_at of the owner's runs; this
-- index answers that max() with one backward index seek per owner.
CREATE INDEX runs_owner_started_idx ON runs (owner, started_at);
