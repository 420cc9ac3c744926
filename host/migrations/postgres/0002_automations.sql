-- Automations, their scheduling state, run history and delivery outbox
-- (PostgreSQL flavour; mirrors ../sqlite/0002_automations.sql).

-- What the user configured. `config` is the whole Braintrust-shaped config
-- (JSON, secrets included: the API redacts them on every read).
CREATE TABLE automations (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TIMESTAMPTZ NOT NULL,
    event_type  TEXT NOT NULL,
    config      JSONB NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX automations_by_project ON automations (project_id, event_type);

-- What the engine keeps per automation: when it is next due, who holds its
-- lease, how far it has looked (the ingest sequence watermark), whether it
-- is suppressed or paused. One row per automation, created with it.
CREATE TABLE automation_state (
    automation_id        UUID PRIMARY KEY REFERENCES automations (id) ON DELETE CASCADE,
    next_run             TIMESTAMPTZ,
    lease_owner          TEXT,
    lease_expires        TIMESTAMPTZ,
    watermark            BIGINT NOT NULL,
    window_start         TIMESTAMPTZ NOT NULL,
    suppressed_until     TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    paused               BOOLEAN NOT NULL DEFAULT FALSE,
    paused_reason        TEXT,
    last_checked         TIMESTAMPTZ
);
CREATE INDEX automation_state_due ON automation_state (paused, next_run);

-- Every run: scheduled, event-driven, manual or test.
CREATE TABLE automation_runs (
    id            UUID PRIMARY KEY,
    automation_id UUID NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    triggered_by  TEXT NOT NULL,
    status        TEXT NOT NULL,
    started       TIMESTAMPTZ NOT NULL,
    finished      TIMESTAMPTZ,
    duration_ms   BIGINT,
    matched_rows  BIGINT,
    deliveries    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    details       JSONB NOT NULL
);
CREATE INDEX automation_runs_by_automation ON automation_runs (automation_id, started, id);

-- The outbox: notifications queued in the same transaction as their run,
-- attempted by the delivery worker until delivered or failed. The id is the
-- event id sent to the destination, stable across attempts.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    automation_id    UUID NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    run_id           UUID NOT NULL,
    event_type       TEXT NOT NULL,
    payload          JSONB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt     TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires    TIMESTAMPTZ,
    last_error       TEXT,
    last_status_code INTEGER,
    triggered_at     TIMESTAMPTZ NOT NULL,
    created          TIMESTAMPTZ NOT NULL,
    finished         TIMESTAMPTZ
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt);
CREATE INDEX deliveries_by_automation ON deliveries (automation_id, status);
