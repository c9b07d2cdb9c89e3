-- Administrators, their browser sessions, API tokens for automation, the integration
-- switches of the Integrations page, and the resolution of runs held by the threshold.

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX admins_by_email ON admins (org_id, email COLLATE NOCASE);

-- Only a SHA-256 of the cookie value is stored: a copy of the database opens no session.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    admin_id   TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,    -- SHA-256 of the token; the token itself is shown once
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE integrations (
    org_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);

-- A held run is confirmed (a follow-up run applied it) or cancelled by an administrator.
ALTER TABLE sync_runs ADD COLUMN resolved_by TEXT;
ALTER TABLE sync_runs ADD COLUMN resolved_at TEXT;
ALTER TABLE sync_runs ADD COLUMN follow_up_run TEXT;
