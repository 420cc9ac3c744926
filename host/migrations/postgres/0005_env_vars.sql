-- Braintrust's environment variables (`/v1/env_var`): secrets scoped to the
-- organization or a project, which configs may name instead of holding
-- them. `value` is sealed under the daemon's secret key (never plain
-- text); `project_id` is set for project-scoped ones so they go with their
-- project. (PostgreSQL flavour; mirrors ../sqlite/0005_env_vars.sql.)
CREATE TABLE env_vars (
    id          UUID PRIMARY KEY,
    object_type TEXT NOT NULL,
    object_id   UUID NOT NULL,
    project_id  UUID REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       TEXT,
    metadata    JSONB,
    secret_type TEXT,
    created     TIMESTAMPTZ NOT NULL,
    used        TIMESTAMPTZ,
    UNIQUE (object_type, object_id, name)
);
