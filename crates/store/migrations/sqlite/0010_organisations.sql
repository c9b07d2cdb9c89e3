-- Many organisations on one deployment. Every table already carries `org_id`; what was
-- one fixed value ('default') becomes a row of `orgs`, and the rows written so far belong to
-- it. Administrators, their sessions, API tokens and the audit log may now also belong to
-- the platform itself (org_id NULL): platform operators, platform tokens, and what they do.
-- SQLite cannot drop a NOT NULL, so those four tables are rebuilt with their rows kept.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,          -- the slug, and every table's org_id
    name        TEXT NOT NULL,
    language    TEXT NOT NULL CHECK (language IN ('en', 'nl')),
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);
INSERT INTO orgs (id, name, language, created_at)
VALUES ('default', 'Default organisation', 'en', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- Sessions refer to administrators: kept aside while `admins` is rebuilt, so that dropping
-- the old table cascades into nothing.
CREATE TABLE sessions_kept AS SELECT * FROM sessions;
DROP TABLE sessions;

-- An administrator of one organisation (org_id), a platform operator (platform = 1), or
-- both. E-mail addresses are unique across the platform: a login names no organisation.
-- The administrators of a deployment before this upgrade stay administrators of 'default'
-- only: they were one customer's administrators, and must not see the organisations added
-- later. The console operator makes platform operators (`safegpt admin create --platform`).
CREATE TABLE admins_new (
    id            TEXT PRIMARY KEY,
    org_id        TEXT REFERENCES orgs (id),
    platform      INTEGER NOT NULL DEFAULT 0,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    CHECK (org_id IS NOT NULL OR platform = 1)
);
INSERT INTO admins_new (id, org_id, platform, email, password_hash, created_at)
SELECT id, org_id, 0, email, password_hash, created_at FROM admins;
DROP TABLE admins;
ALTER TABLE admins_new RENAME TO admins;
CREATE UNIQUE INDEX admins_by_email ON admins (email COLLATE NOCASE);

-- org_id: the organisation this session administers (a platform operator's opened one),
-- NULL while a platform operator has opened none.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    org_id     TEXT REFERENCES orgs (id),
    admin_id   TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
INSERT INTO sessions (id_hash, org_id, admin_id, csrf_token, created_at, expires_at)
SELECT id_hash, org_id, admin_id, csrf_token, created_at, expires_at FROM sessions_kept;
DROP TABLE sessions_kept;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- org_id NULL: a platform token.
CREATE TABLE api_tokens_new (
    id           TEXT PRIMARY KEY,
    org_id       TEXT REFERENCES orgs (id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    scope        TEXT NOT NULL DEFAULT 'admin'
);
INSERT INTO api_tokens_new (id, org_id, name, token_hash, created_by, created_at, last_used_at, revoked_at, scope)
SELECT id, org_id, name, token_hash, created_by, created_at, last_used_at, revoked_at, scope FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_by_org ON api_tokens (org_id, created_at);

-- org_id NULL: the platform's own audit (organisations and operators created, platform tokens).
CREATE TABLE audit_log_new (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id  TEXT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    details TEXT NOT NULL
);
INSERT INTO audit_log_new (id, org_id, at, actor, action, target, details)
SELECT id, org_id, at, actor, action, target, details FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_by_org ON audit_log (org_id, id);
