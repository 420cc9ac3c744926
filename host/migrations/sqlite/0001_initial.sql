-- Herald schema, SQLite flavour. Mirrors ../postgres/0001_initial.sql.
-- Identifiers are hyphenated UUID text, timestamps fixed-width UTC text
-- (see host/src/store/columns.rs), JSON values are JSON text.

-- One row: the last ingest sequence number handed out. Every write that
-- creates rows in `events`, `prompt_versions` or `environment_events` bumps
-- it inside its transaction, which serialises writers and so makes the
-- sequence increase in commit order (see host/src/store/sequence.rs).
CREATE TABLE xact_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO xact_counter (id, last) VALUES (1, 0);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created     TEXT NOT NULL
);

CREATE TABLE experiments (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TEXT NOT NULL,
    dataset_id  TEXT,
    public      INTEGER NOT NULL DEFAULT 0,
    metadata    TEXT,
    tags        TEXT,
    UNIQUE (project_id, name)
);

CREATE TABLE datasets (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TEXT NOT NULL,
    metadata    TEXT,
    UNIQUE (project_id, name)
);

-- Project logs, experiment events and dataset rows share one table: they have
-- the same shape, and one table gives one ingest path, one fetch path and one
-- filter compiler. `object_type` is 'project_logs', 'experiment' or 'dataset';
-- `object_id` is the project, experiment or dataset id.
CREATE TABLE events (
    object_type     TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    xact_id         INTEGER NOT NULL,
    created         TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    root_span_id    TEXT NOT NULL,
    span_parents    TEXT,
    is_root         INTEGER NOT NULL,
    input           TEXT,
    output          TEXT,
    expected        TEXT,
    error           TEXT,
    scores          TEXT,
    metrics         TEXT,
    metadata        TEXT,
    tags            TEXT,
    span_attributes TEXT,
    context         TEXT,
    PRIMARY KEY (object_type, object_id, id)
);
CREATE UNIQUE INDEX events_by_xact ON events (object_type, object_id, xact_id);
CREATE INDEX events_by_created ON events (object_type, object_id, created);
CREATE INDEX events_by_root_span ON events (object_type, object_id, root_span_id);
-- Project-wide scans, and the cascade when a project is deleted.
CREATE INDEX events_by_project ON events (project_id, xact_id);

CREATE TABLE prompts (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    created     TEXT NOT NULL,
    UNIQUE (project_id, slug)
);

-- Every change to a prompt is a new version, numbered by the ingest sequence
-- like Braintrust's `_xact_id`.
CREATE TABLE prompt_versions (
    prompt_id     TEXT NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    xact_id       INTEGER NOT NULL,
    created       TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    function_type TEXT,
    prompt_data   TEXT,
    tags          TEXT,
    metadata      TEXT,
    PRIMARY KEY (prompt_id, xact_id)
);

CREATE TABLE environments (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TEXT NOT NULL
);

-- Which version of a prompt an environment currently points at.
CREATE TABLE prompt_environments (
    prompt_id      TEXT NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    updated        TEXT NOT NULL,
    PRIMARY KEY (prompt_id, environment_id)
);
CREATE INDEX prompt_environments_by_environment ON prompt_environments (environment_id);

-- The append-only history of assignments and removals that environment
-- alerts react to. Kept after the prompt or environment is gone.
CREATE TABLE environment_events (
    xact_id          INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    project_id       TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prompt_id        TEXT NOT NULL,
    prompt_slug      TEXT NOT NULL,
    prompt_name      TEXT NOT NULL,
    environment_slug TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('assigned', 'removed')),
    version          INTEGER,
    previous_version INTEGER,
    created          TEXT NOT NULL
);
CREATE INDEX environment_events_by_project ON environment_events (project_id, xact_id);
