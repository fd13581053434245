-- 0003_models.sql: named models, their numbered versions (each a succeeded
-- run) and aliases that point at a version (production, staging, ...).
-- Deleting a model deletes its versions and aliases; a run that is a
-- version cannot be deleted (the store answers STORE_CONFLICT first; the
-- foreign key is the backstop).

CREATE TABLE models (
    name        TEXT    PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE model_versions (
    model      TEXT    NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version >= 1),
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (model, version)
);

-- "is this run a version of some model?" when a run is deleted
CREATE INDEX model_versions_run_idx ON model_versions (run_id);

CREATE TABLE model_aliases (
    model   TEXT    NOT NULL REFERENCES models (name) ON DELETE CASCADE,
    alias   TEXT    NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
