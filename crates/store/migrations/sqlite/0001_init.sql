-- SafeGPT directory schema (SQLite). migrations/postgres will mirror it with native types.
-- Every table carries org_id so one deployment can later serve many organisations.
-- Times are RFC 3339 UTC text; ids are UUID text; Entra object ids are text.

CREATE TABLE settings (
    org_id        TEXT PRIMARY KEY,
    body          TEXT NOT NULL,          -- JSON of the validated settings (no secret)
    sealed_secret TEXT,                   -- v1:<key id>:<base64(nonce || AES-256-GCM ciphertext)>
    updated_at    TEXT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL,
    source              TEXT NOT NULL CHECK (source IN ('entra', 'local')),
    azure_object_id     TEXT,
    email               TEXT NOT NULL,
    user_principal_name TEXT,
    display_name        TEXT,
    given_name          TEXT,
    surname             TEXT,
    job_title           TEXT,
    department          TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'awaiting_license')),
    disabled_reason     TEXT,
    disabled_at         TEXT,
    in_scope            INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX users_by_azure_object_id ON users (org_id, azure_object_id) WHERE azure_object_id IS NOT NULL;
CREATE INDEX users_by_email ON users (org_id, email COLLATE NOCASE);

CREATE TABLE sync_runs (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    dry_run          INTEGER NOT NULL,
    status           TEXT NOT NULL,       -- running | succeeded | failed | held | dry_run | interrupted
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    created          INTEGER NOT NULL DEFAULT 0,
    updated          INTEGER NOT NULL DEFAULT 0,
    enabled          INTEGER NOT NULL DEFAULT 0,
    disabled         INTEGER NOT NULL DEFAULT 0,
    removed          INTEGER NOT NULL DEFAULT 0,
    unchanged        INTEGER NOT NULL DEFAULT 0,
    awaiting_license INTEGER NOT NULL DEFAULT 0,
    users_read       INTEGER NOT NULL DEFAULT 0,
    graph_requests   INTEGER NOT NULL DEFAULT 0,
    error_kind       TEXT,
    error_message    TEXT,
    error_detail     TEXT
);
CREATE INDEX sync_runs_by_start ON sync_runs (org_id, started_at);

-- What a run changed (or, for dry runs and held runs, would change).
CREATE TABLE run_changes (
    run_id          TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    azure_object_id TEXT,
    email           TEXT NOT NULL,
    action          TEXT NOT NULL,
    reason_code     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    fields          TEXT NOT NULL,        -- JSON array of changed field names
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id  TEXT NOT NULL,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,                -- "sync:<run id>", "cli", "admin:<email>"
    action  TEXT NOT NULL,
    target  TEXT,
    details TEXT NOT NULL                 -- JSON; secrets appear only as "[redacted]"
);

-- Outbox the platform reads to follow the directory.
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id  TEXT NOT NULL,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,                -- user.created | user.updated | user.enabled | user.disabled | user.removed
    user_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
