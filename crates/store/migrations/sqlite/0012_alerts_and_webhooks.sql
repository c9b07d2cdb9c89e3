-- Alerts by e-mail and webhooks (issue 15). Times are RFC 3339 text in whole seconds where a
-- query compares them (next_attempt_at, claimed_until), so that text order is time order.

-- An organisation's webhook endpoints. Delivery is in order per endpoint: delivered_seq is
-- the organisation's last event this endpoint has had (or does not want); the head message
-- is the next wanted one, with its attempts so far. claimed_by/claimed_until: the one
-- instance delivering to it now.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,              -- JSON array of event types
    sealed_secret   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    delivered_seq   BIGINT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'active',  -- active | failing
    head_attempts   BIGINT NOT NULL DEFAULT 0,
    head_first_failed_at TEXT,
    next_attempt_at TEXT,
    last_error      TEXT,
    claimed_by      TEXT,
    claimed_until   TEXT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id);

-- Every attempt at a message, for the delivery log.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    seq         BIGINT,                          -- NULL: a test message
    attempt     BIGINT NOT NULL,
    at          TEXT NOT NULL,
    status_code BIGINT,
    outcome     TEXT NOT NULL,                   -- delivered | failed
    error       TEXT
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- E-mails to send, sent or given up on.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    recipients      TEXT NOT NULL,              -- JSON array
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    claimed_by      TEXT,
    claimed_until   TEXT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_org ON notifications (org_id, created_at);

-- What the alerts of an organisation have seen and said: how far they read its events,
-- since when its syncs fail and when that was last mailed, the secret warning last mailed.
CREATE TABLE alert_state (
    org_id            TEXT PRIMARY KEY,
    event_cursor      BIGINT NOT NULL,
    failing_since     TEXT,
    failure_mailed_at TEXT,
    secret_warned     TEXT                       -- "<expiry date>/<step>"
);
