-- Single flight across processes: the one row per organisation names the process that may
-- run a sync until `expires_at`; the holder renews it while it works. A holder that died
-- stops renewing, the lease expires, and the next holder marks its run interrupted.
CREATE TABLE sync_lease (
    org_id     TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    run_id     TEXT,
    expires_at TEXT NOT NULL
);

-- When the scheduler of any instance should start the next sync.
CREATE TABLE sync_schedule (
    org_id      TEXT PRIMARY KEY,
    next_run_at TEXT NOT NULL
);
