-- 0008_run_signals.sql (PostgreSQL; as migrations/sqlite/0008): a run's
-- cancel request and live progress columns, and the NOTIFY triggers by
-- which one node tells the others (server/jobs/signals.h; the listener is
-- store_listen in server/store/pg.c).
--
-- Every signal goes on one channel per schema, "<schema>.mnistd" (as River
-- prefixes its topics with the schema: several services may share one
-- database), with a text payload "<kind> <argument>" that
-- store_signal_parse reads:
--   queued <run>            a run entered the queue (insert, requeue,
--                           resume): idle workers on every node claim
--   cancel <run>            a running run's cancel was requested
--   deleted <run>           a run was deleted: every node drops its model
--   period <run>            a period of the run was stored: event streams
--                           on other nodes read it from the store
--   dataset_deleted <name>  an uploaded dataset was deleted
-- NOTIFY is sent at COMMIT, so a listener never hears of a row it cannot
-- read yet. The triggers follow graphile-worker's (an AFTER INSERT trigger
-- on its jobs table that does pg_notify('jobs:insert', ...); River's first
-- schema had one too, later moved into its insert queries): written once
-- here, every statement that queues, cancels or deletes signals without the
-- store's logic knowing.
ALTER TABLE runs ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0
    CHECK (cancel_requested IN (0, 1));
ALTER TABLE runs ADD COLUMN progress_step BIGINT CHECK (progress_step >= 0);
ALTER TABLE runs ADD COLUMN progress_period BIGINT
    CHECK (progress_period >= 0);
ALTER TABLE runs ADD COLUMN progress_at BIGINT;

CREATE FUNCTION mnistd_notify_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    channel TEXT := current_schema() || '.mnistd';
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify(channel, 'deleted ' || OLD.id);
        RETURN OLD;
    END IF;
    IF NEW.status = 'queued' AND
       (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'queued') THEN
        PERFORM pg_notify(channel, 'queued ' || NEW.id);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.cancel_requested = 1 AND
       OLD.cancel_requested = 0 THEN
        PERFORM pg_notify(channel, 'cancel ' || NEW.id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER runs_notify
    AFTER INSERT OR DELETE OR UPDATE OF status, cancel_requested ON runs
    FOR EACH ROW EXECUTE FUNCTION mnistd_notify_runs();

CREATE FUNCTION mnistd_notify_periods() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '.mnistd', 'period ' || NEW.run_id);
    RETURN NEW;
END $$;

-- AFTER INSERT only: a period stored again (a resumed run redoes it, an
-- upsert) has equal numbers, and the streams already have it
CREATE TRIGGER periods_notify AFTER INSERT ON periods
    FOR EACH ROW EXECUTE FUNCTION mnistd_notify_periods();

CREATE FUNCTION mnistd_notify_datasets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '.mnistd',
                      'dataset_deleted ' || OLD.name);
    RETURN OLD;
END $$;

CREATE TRIGGER datasets_notify AFTER DELETE ON datasets
    FOR EACH ROW EXECUTE FUNCTION mnistd_notify_datasets();
