-- Trails (ActionTrail's CreateTrail … DescribeTrails), one row per (account, name). String
-- fields never set are '' as DescribeTrails shows them; the logging times are NULL until first set.
CREATE TABLE trails (
    account_id                 TEXT NOT NULL,
    name                       TEXT NOT NULL,
    home_region                TEXT NOT NULL,
    trail_region               TEXT NOT NULL,
    event_rw                   TEXT NOT NULL,
    status                     TEXT NOT NULL,
    oss_bucket_name            TEXT NOT NULL,
    oss_bucket_location        TEXT NOT NULL,
    oss_key_prefix             TEXT NOT NULL,
    oss_write_role_arn         TEXT NOT NULL,
    sls_project_arn            TEXT NOT NULL,
    sls_write_role_arn         TEXT NOT NULL,
    max_compute_project_arn    TEXT NOT NULL,
    max_compute_write_role_arn TEXT NOT NULL,
    role_name                  TEXT NOT NULL,
    mns_topic_arn              TEXT NOT NULL,
    is_organization_trail      INTEGER NOT NULL,
    organization_id            TEXT NOT NULL,
    create_ms                  INTEGER NOT NULL,
    update_ms                  INTEGER NOT NULL,
    start_logging_ms           INTEGER,
    stop_logging_ms            INTEGER,
    PRIMARY KEY (account_id, name)
);
-- RepeatOssBucket: a bucket holds one trail's files, whichever account owns the trail.
CREATE INDEX trails_bucket ON trails (oss_bucket_name);

CREATE TABLE data_event_selectors (
    account_id          TEXT NOT NULL,
    trail_name          TEXT NOT NULL,
    event_selectors     TEXT NOT NULL,
    is_trail_all_region INTEGER NOT NULL,
    trail_region_ids    TEXT NOT NULL,
    create_ms           INTEGER NOT NULL,
    update_ms           INTEGER NOT NULL,
    PRIMARY KEY (account_id, trail_name)
);

-- Delivery-history jobs: status 0 initializing, 1 delivering, 2 complete, 3 failed; the delivery
-- engine keeps its resume point in checkpoint.
CREATE TABLE history_jobs (
    job_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT NOT NULL,
    trail_name      TEXT NOT NULL,
    home_region     TEXT NOT NULL,
    status          INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    client_token    TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    started_ms      INTEGER,
    finished_ms     INTEGER,
    checkpoint      TEXT NOT NULL,
    error           TEXT NOT NULL
);
CREATE INDEX history_jobs_account ON history_jobs (account_id, job_id);
CREATE INDEX history_jobs_status ON history_jobs (status, job_id);

-- Organizations: a management account and its members; an account is in at most one.
CREATE TABLE organizations (
    management_account_id TEXT PRIMARY KEY,
    organization_id       TEXT NOT NULL UNIQUE,
    created_ms            INTEGER NOT NULL
);
CREATE TABLE organization_members (
    member_account_id     TEXT PRIMARY KEY,
    management_account_id TEXT NOT NULL,
    added_ms              INTEGER NOT NULL
);
CREATE INDEX organization_members_management ON organization_members (management_account_id);

-- Per-account settings of the API (GlobalEventsStorageRegion).
CREATE TABLE account_settings (
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
