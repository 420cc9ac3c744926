-- Who created an automation: a stable id of the API key it was created with
-- (an HMAC of the key under a per-deployment salt, never the key).
ALTER TABLE automations ADD COLUMN user_id UUID;

-- Secrets of the deployment itself, sealed like every other secret (the
-- identity salt). (PostgreSQL flavour; mirrors ../sqlite/0006_identities.sql.)
CREATE TABLE deployment_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
