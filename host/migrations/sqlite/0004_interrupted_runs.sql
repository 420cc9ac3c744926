-- When the current lease holder claimed the automation: the start of a run
-- that ends without a commit (the daemon crashed, was killed or lost
-- power), recorded as an interrupted run once the lease expires.
ALTER TABLE automation_state ADD COLUMN lease_claimed TEXT;
