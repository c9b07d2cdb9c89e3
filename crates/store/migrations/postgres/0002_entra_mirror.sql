-- The sync's copy of Entra ID: every user of the tenant as last read, every group with its
-- direct members, and where the next delta round starts. A run writes it in the same
-- transaction as the changes it applies, so the copy and the directory never disagree.
CREATE TABLE entra_users (
    org_id              TEXT NOT NULL,
    id                  TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    mail                TEXT,
    display_name        TEXT,
    given_name          TEXT,
    surname             TEXT,
    job_title           TEXT,
    department          TEXT,
    account_enabled     BIGINT NOT NULL,
    user_type           TEXT NOT NULL,
    -- RemoteUser::fingerprint: a full read compares this instead of every column.
    fingerprint         BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE entra_groups (
    org_id TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- Direct members only (users and groups); transitive membership is derived from these.
CREATE TABLE entra_members (
    org_id    TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    PRIMARY KEY (org_id, group_id, member_id)
);
CREATE INDEX entra_members_by_member ON entra_members (org_id, member_id);
-- The group tree, read whole by every incremental run.
CREATE INDEX entra_members_groups ON entra_members (org_id, group_id, member_id) WHERE kind = 'group';

CREATE TABLE sync_cursor (
    org_id            TEXT PRIMARY KEY,
    users_delta_link  TEXT,
    groups_delta_link TEXT,
    full_read_at      TEXT,
    -- The settings the copy was last planned with; a different scope needs a full read.
    scope             TEXT
);

ALTER TABLE sync_runs ADD COLUMN read_mode TEXT;

-- An incremental run reads totals and the few users the rules look at whatever Entra says
-- (see Store::users_needing_a_look) without scanning the directory.
CREATE INDEX users_by_source_status ON users (org_id, source, status);
CREATE INDEX users_needing_a_look ON users (org_id, created_at, id)
    WHERE source = 'local' OR status <> 'active' OR in_scope = 0;
