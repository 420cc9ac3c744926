-- Herald schema, PostgreSQL flavour. Mirrors ../sqlite/0001_initial.sql.
-- Identifiers are uuid, timestamps timestamptz, JSON values jsonb.

-- One row: the last ingest sequence number handed out. Every write that
-- creates rows in `events`, `prompt_versions` or `environment_events` bumps
-- it inside its transaction, which serialises writers and so makes the
-- sequence increase in commit order (see host/src/store/sequence.rs).
CREATE TABLE xact_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO xact_counter (id, last) VALUES (1, 0);

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    created     TIMESTAMPTZ NOT NULL
);

CREATE TABLE experiments (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TIMESTAMPTZ NOT NULL,
    dataset_id  UUID,
    public      BOOLEAN NOT NULL DEFAULT FALSE,
    metadata    JSONB,
    tags        JSONB,
    UNIQUE (project_id, name)
);

CREATE TABLE datasets (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TIMESTAMPTZ NOT NULL,
    metadata    JSONB,
    UNIQUE (project_id, name)
);

-- Project logs, experiment events and dataset rows share one table: they have
-- the same shape, and one table gives one ingest path, one fetch path and one
-- filter compiler. `object_type` is 'project_logs', 'experiment' or 'dataset';
-- `object_id` is the project, experiment or dataset id.
CREATE TABLE events (
    object_type     TEXT NOT NULL,
    object_id       UUID NOT NULL,
    id              TEXT NOT NULL,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    xact_id         BIGINT NOT NULL,
    created         TIMESTAMPTZ NOT NULL,
    span_id         TEXT NOT NULL,
    root_span_id    TEXT NOT NULL,
    span_parents    JSONB,
    is_root         BOOLEAN NOT NULL,
    input           JSONB,
    output          JSONB,
    expected        JSONB,
    error           JSONB,
    scores          JSONB,
    metrics         JSONB,
    metadata        JSONB,
    tags            JSONB,
    span_attributes JSONB,
    context         JSONB,
    PRIMARY KEY (object_type, object_id, id)
);
CREATE UNIQUE INDEX events_by_xact ON events (object_type, object_id, xact_id);
CREATE INDEX events_by_created ON events (object_type, object_id, created);
CREATE INDEX events_by_root_span ON events (object_type, object_id, root_span_id);
-- Project-wide scans, and the cascade when a project is deleted.
CREATE INDEX events_by_project ON events (project_id, xact_id);

CREATE TABLE prompts (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    created     TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, slug)
);

-- Every change to a prompt is a new version, numbered by the ingest sequence
-- like Braintrust's `_xact_id`.
CREATE TABLE prompt_versions (
    prompt_id     UUID NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    xact_id       BIGINT NOT NULL,
    created       TIMESTAMPTZ NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    function_type TEXT,
    prompt_data   JSONB,
    tags          JSONB,
    metadata      JSONB,
    PRIMARY KEY (prompt_id, xact_id)
);

CREATE TABLE environments (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TIMESTAMPTZ NOT NULL
);

-- Which version of a prompt an environment currently points at.
CREATE TABLE prompt_environments (
    prompt_id      UUID NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    environment_id UUID NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    version        BIGINT NOT NULL,
    updated        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (prompt_id, environment_id)
);
CREATE INDEX prompt_environments_by_environment ON prompt_environments (environment_id);

-- The append-only history of assignments and removals that environment
-- alerts react to. Kept after the prompt or environment is gone.
CREATE TABLE environment_events (
    xact_id          BIGINT PRIMARY KEY,
    id               UUID NOT NULL UNIQUE,
    project_id       UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prompt_id        UUID NOT NULL,
    prompt_slug      TEXT NOT NULL,
    prompt_name      TEXT NOT NULL,
    environment_slug TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('assigned', 'removed')),
    version          BIGINT,
    previous_version BIGINT,
    created          TIMESTAMPTZ NOT NULL
);
CREATE INDEX environment_events_by_project ON environment_events (project_id, xact_id);
