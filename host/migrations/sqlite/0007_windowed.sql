-- Windowed threshold alerts (mirrored in both flavours).

-- The lifecycle of each group of a windowed alert (state, since when, the
-- last value, the last notification), as one JSON document written in the
-- same transaction as the evaluation that moved it. NULL for other kinds.
ALTER TABLE automation_state ADD COLUMN windowed TEXT;

-- Which of the config's `actions` a notification goes to; NULL: the one
-- `action` of a log or environment alert.
ALTER TABLE deliveries ADD COLUMN action_index INTEGER;

-- A run with several notifications finishes when the last one does.
CREATE INDEX deliveries_by_run ON deliveries (run_id);

-- The failure streak and pause of each destination of an automation with
-- several (its `action` is index -1, `actions[i]` is i): one failing
-- destination pauses alone while the others go on.
CREATE TABLE destination_state (
    automation_id        TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    action_index         INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    paused               INTEGER NOT NULL DEFAULT 0,
    paused_reason        TEXT,
    PRIMARY KEY (automation_id, action_index)
);
