-- Many organisations on one deployment (see the SQLite migration of the same name for the
-- why). What was one fixed org_id ('default') becomes a row of `orgs`.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    language    TEXT NOT NULL CHECK (language IN ('en', 'nl')),
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);
INSERT INTO orgs (id, name, language, created_at)
VALUES ('default', 'Default organisation', 'en', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));

ALTER TABLE admins ALTER COLUMN org_id DROP NOT NULL;
ALTER TABLE admins ADD COLUMN platform BIGINT NOT NULL DEFAULT 0;
ALTER TABLE admins ADD CONSTRAINT admins_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id);
ALTER TABLE admins ADD CONSTRAINT admins_org_or_platform CHECK (org_id IS NOT NULL OR platform = 1);
DROP INDEX admins_by_email;
CREATE UNIQUE INDEX admins_by_email ON admins (lower(email));

ALTER TABLE sessions ALTER COLUMN org_id DROP NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

ALTER TABLE api_tokens ALTER COLUMN org_id DROP NOT NULL;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id);
CREATE INDEX api_tokens_by_org ON api_tokens (org_id, created_at);

ALTER TABLE audit_log ALTER COLUMN org_id DROP NOT NULL;
CREATE INDEX audit_log_by_org ON audit_log (org_id, id);
