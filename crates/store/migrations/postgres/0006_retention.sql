-- Retention. Runs whose list of changes is still there, by start: each retention pass finds
-- the next list to remove without scanning the runs it already emptied.
CREATE INDEX sync_runs_changes_kept ON sync_runs (org_id, started_at) WHERE changes_removed_at IS NULL;

-- The outbox is removed from its oldest end: every event up to `through_seq` is gone, every
-- later one is kept. A follower whose cursor is older learns it missed events (410).
CREATE TABLE events_removed (
    org_id      TEXT PRIMARY KEY,
    through_seq BIGINT NOT NULL
);
