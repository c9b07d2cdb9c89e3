-- Retention. A run's list of changes is removed in two steps: the run is marked (from then
-- on every reader sees the list as removed), then its rows go in small batches while
-- `changes_purge_pending` is 1. Each index lets a pass find the next run without scanning
-- the runs it already emptied.
ALTER TABLE sync_runs ADD COLUMN changes_purge_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sync_runs_changes_kept ON sync_runs (org_id, started_at) WHERE changes_removed_at IS NULL;
CREATE INDEX sync_runs_changes_purging ON sync_runs (org_id) WHERE changes_purge_pending = 1;

-- The outbox is removed from its oldest end: every event up to `through_seq` is gone, every
-- later one is kept. A follower whose cursor is older learns it missed events (410).
CREATE TABLE events_removed (
    org_id      TEXT PRIMARY KEY,
    through_seq INTEGER NOT NULL
);
