-- 0002_runs_model_idx.sql (PostgreSQL; as migrations/sqlite/0002): GET
-- /runs?model=... lists the runs of one model newest first; this index
-- serves that filter in id order.
CREATE INDEX runs_model_idx ON runs (model, id);
