-- Insights (docs/insights.md): each account's enabled types, the trail selectors, the insight
-- records, and the detector's place in the log. A record's insight_id is derived from what raised
-- it, so the unique key stores an insight once however many nodes (or replays) raise it.
CREATE TABLE insight_types (
    account_id   TEXT NOT NULL,
    insight_type TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (account_id, insight_type)
);

CREATE TABLE insight_selectors (
    account_id TEXT NOT NULL,
    trail_name TEXT NOT NULL,
    selectors  TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, trail_name)
);

CREATE TABLE insights (
    ref            INTEGER PRIMARY KEY,
    account_id     TEXT NOT NULL,
    insight_id     TEXT NOT NULL,
    shared_id      TEXT NOT NULL,
    insight_type   TEXT NOT NULL,
    state          TEXT NOT NULL,
    event_time     INTEGER NOT NULL,
    region         TEXT NOT NULL,
    insight_object TEXT NOT NULL,
    service_name   TEXT NOT NULL,
    event_name     TEXT NOT NULL,
    source_ip      TEXT NOT NULL,
    access_key_id  TEXT NOT NULL,
    body           BLOB NOT NULL,
    UNIQUE (account_id, insight_id)
);
CREATE INDEX insights_time ON insights (account_id, event_time, ref);

CREATE TABLE insight_detector (
    name        TEXT PRIMARY KEY,
    watermark   INTEGER NOT NULL,
    state       BLOB NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
