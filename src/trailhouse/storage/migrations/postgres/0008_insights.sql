-- Insights (docs/insights.md): each account's enabled types, the trail selectors, the insight
-- records, and the detector's place in the log. A record's insight_id is derived from what raised
-- it, so the unique key stores an insight once however many nodes (or replays) raise it.
CREATE TABLE insight_types (
    account_id   text NOT NULL,
    insight_type text NOT NULL,
    enabled      bigint NOT NULL,
    updated_ms   bigint NOT NULL,
    PRIMARY KEY (account_id, insight_type)
);

CREATE TABLE insight_selectors (
    account_id text NOT NULL,
    trail_name text NOT NULL,
    selectors  text NOT NULL,
    updated_ms bigint NOT NULL,
    PRIMARY KEY (account_id, trail_name)
);

CREATE TABLE insights (
    ref            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     text NOT NULL,
    insight_id     text NOT NULL,
    shared_id      text NOT NULL,
    insight_type   text NOT NULL,
    state          text NOT NULL,
    event_time     bigint NOT NULL,
    region         text NOT NULL,
    insight_object text NOT NULL,
    service_name   text NOT NULL,
    event_name     text NOT NULL,
    source_ip      text NOT NULL,
    access_key_id  text NOT NULL,
    body           bytea NOT NULL,
    UNIQUE (account_id, insight_id)
);
CREATE INDEX insights_time ON insights (account_id, event_time, ref);

CREATE TABLE insight_detector (
    name        text PRIMARY KEY,
    watermark   bigint NOT NULL,
    state       bytea NOT NULL,
    lease_owner text NOT NULL,
    lease_until bigint NOT NULL,
    updated_ms  bigint NOT NULL
);
