-- A number that every write to an organisation's users moves on. A sync notes it before it
-- reads the directory and applies its plan only while it is unchanged (checked inside the
-- applying transaction), so nothing an administrator did after the run read is overwritten.
CREATE TABLE directory_versions (
    org_id  TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
