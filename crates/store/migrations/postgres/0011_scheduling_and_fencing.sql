-- The scheduler of many organisations, and the fencing of applies.
-- generation: raised each time the lease is taken, never reset (a released lease keeps its
-- row), so the apply transaction can check that the lease it started under is still the
-- current one. failures: consecutive failed scheduled runs, for the back-off.
ALTER TABLE sync_lease ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_schedule ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sync_schedule_due ON sync_schedule (next_run_at);
