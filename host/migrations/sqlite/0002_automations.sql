-- Automations, their scheduling state, run history and delivery outbox
-- (SQLite flavour; mirrors ../postgres/0002_automations.sql).

-- What the user configured. `config` is the whole Braintrust-shaped config
-- (JSON, secrets included: the API redacts them on every read).
CREATE TABLE automations (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created     TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    config      TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX automations_by_project ON automations (project_id, event_type);

-- What the engine keeps per automation: when it is next due, who holds its
-- lease, how far it has looked (the ingest sequence watermark), whether it
-- is suppressed or paused. One row per automation, created with it.
CREATE TABLE automation_state (
    automation_id        TEXT PRIMARY KEY REFERENCES automations (id) ON DELETE CASCADE,
    next_run             TEXT,
    lease_owner          TEXT,
    lease_expires        TEXT,
    watermark            INTEGER NOT NULL,
    window_start         TEXT NOT NULL,
    suppressed_until     TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    paused               INTEGER NOT NULL DEFAULT 0,
    paused_reason        TEXT,
    last_checked         TEXT
);
CREATE INDEX automation_state_due ON automation_state (paused, next_run);

-- Every run: scheduled, event-driven, manual or test.
CREATE TABLE automation_runs (
    id            TEXT PRIMARY KEY,
    automation_id TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    triggered_by  TEXT NOT NULL,
    status        TEXT NOT NULL,
    started       TEXT NOT NULL,
    finished      TEXT,
    duration_ms   INTEGER,
    matched_rows  INTEGER,
    deliveries    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    details       TEXT NOT NULL
);
CREATE INDEX automation_runs_by_automation ON automation_runs (automation_id, started, id);

-- The outbox: notifications queued in the same transaction as their run,
-- attempted by the delivery worker until delivered or failed. The id is the
-- event id sent to the destination, stable across attempts.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    automation_id    TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    run_id           TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt     TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires    TEXT,
    last_error       TEXT,
    last_status_code INTEGER,
    triggered_at     TEXT NOT NULL,
    created          TEXT NOT NULL,
    finished         TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt);
CREATE INDEX deliveries_by_automation ON deliveries (automation_id, status);
