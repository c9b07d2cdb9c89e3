-- Graph as Microsoft documents it (docs/graph-fidelity.md).

-- A guest without a mailbox is reached at the first address of otherMails.
ALTER TABLE entra_users ADD COLUMN other_mail TEXT;

-- Users and groups Entra deleted softly (restorable for 30 days). When one of them comes
-- back, the memberships it kept are not reported by groups/delta: the run reads everything.
CREATE TABLE entra_tombstones (
    org_id TEXT NOT NULL,
    id     TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;

-- What a run confirmed with Graph directly before removing anyone, and how many of those
-- users turned out to be back (and were kept).
ALTER TABLE sync_runs ADD COLUMN confirmed_users INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN kept_users INTEGER NOT NULL DEFAULT 0;
