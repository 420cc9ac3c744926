-- Braintrust's environment variables (`/v1/env_var`): secrets scoped to the
-- organization or a project, which configs may name instead of holding
-- them. `value` is sealed under the daemon's secret key (never plain
-- text); `project_id` is set for project-scoped ones so they go with their
-- project. (SQLite flavour; mirrors ../postgres/0005_env_vars.sql.)
CREATE TABLE env_vars (
    id          TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    project_id  TEXT REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       TEXT,
    metadata    TEXT,
    secret_type TEXT,
    created     TEXT NOT NULL,
    used        TEXT,
    UNIQUE (object_type, object_id, name)
);
