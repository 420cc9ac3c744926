-- S3 export (PostgreSQL flavour; mirrors ../sqlite/0003_export.sql).
--
-- An export batch is first *reserved*: its upper bound and start time are
-- committed before the object is written, so a run that dies between the
-- write and the cursor commit retries exactly the same batch, under the
-- same object key, and overwrites instead of duplicating.
ALTER TABLE automation_state ADD COLUMN export_pending_upto BIGINT;
ALTER TABLE automation_state ADD COLUMN export_pending_started TIMESTAMPTZ;
