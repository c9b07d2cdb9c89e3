-- Security hardening (docs/security.md).

-- What an API token may do: read (GET routes, metrics, events), sync (start, confirm and
-- cancel runs) or admin (settings, users, tokens). Tokens made before scopes existed keep
-- what they could do.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';

-- Failed logins per key (an e-mail or a client address), shared by every instance on this
-- database. A slot is reserved here before a password is verified, so concurrent guesses
-- cannot all pass the check.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_at      TEXT NOT NULL,
    locked_until TEXT
);

-- Users a run read whose address in Entra is not an e-mail address (markup, line breaks):
-- they are stored without one, and the run says how many.
ALTER TABLE sync_runs ADD COLUMN invalid_emails BIGINT NOT NULL DEFAULT 0;

-- Search folds case in Rust (Unicode), not with SQL's lower(), which is ASCII-only on
-- SQLite. Rows written before this release are filled in when the store opens.
ALTER TABLE users ADD COLUMN search_text TEXT;
