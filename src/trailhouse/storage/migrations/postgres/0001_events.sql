-- The PostgreSQL layout mirrors SQLite's (sqlite/0001_events.sql): the same tables and columns, so
-- storage/sql.py builds one query for both. Differences, and why:
--   * strings are bytea (UTF-8): PostgreSQL text cannot hold NUL, which JSON strings may contain,
--     and bytea compares bytewise like SQLite's BINARY collation, so prefix ranges match the same terms;
--   * events and event_resources are range-partitioned by event_time (monthly partitions, created by
--     the store ahead of time and on demand; see postgres.py), so retention drops whole partitions;
--   * a partitioned table cannot hold a unique index without the partition key, so the exact
--     (account, eventId) dedupe lives in the unpartitioned event_ids, which is also the seq index
--     the log is read through;
--   * time indexes end in seq, giving the full (event_time, seq) order SQLite gets from its rowid.

CREATE TABLE terms (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    value bytea NOT NULL UNIQUE
);

-- The log's head: last_seq is the last seq handed out. Its row lock is held by every ingest
-- transaction from seq assignment to commit, so seqs become visible in order (postgres.py).
CREATE TABLE log_head (
    id       integer PRIMARY KEY CHECK (id = 1),
    last_seq bigint NOT NULL
);
INSERT INTO log_head VALUES (1, 0);

CREATE TABLE events (
    seq          bigint NOT NULL,
    account      bigint NOT NULL,
    event_time   bigint NOT NULL,
    event_key    bigint NOT NULL,   -- 64-bit hash of eventId; equality re-checked on event_id
    request_key  bigint,            -- 64-bit hash of requestId, equality re-checked on request_id
    event_name   bigint NOT NULL,
    event_type   bigint,
    event_rw     bigint,
    category     bigint,
    service      bigint,
    user_name    bigint,
    access_key   bigint,
    source_ip    bigint,
    role_name    bigint,
    sensitive    smallint,
    error_code   bigint,
    event_id     bytea NOT NULL,
    request_id   bytea,
    body         bytea NOT NULL,
    PRIMARY KEY (seq, event_time)
) PARTITION BY RANGE (event_time);
-- Bodies are already compressed (codec.py): don't let TOAST try again.
ALTER TABLE events ALTER COLUMN body SET STORAGE EXTERNAL;

CREATE INDEX events_time       ON events (account, event_time, seq);
CREATE INDEX events_key        ON events (account, event_key);
CREATE INDEX events_request    ON events (account, request_key, event_time, seq) WHERE request_key IS NOT NULL;
CREATE INDEX events_name       ON events (account, event_name, event_time, seq);
CREATE INDEX events_type       ON events (account, event_type, event_time, seq) WHERE event_type IS NOT NULL;
CREATE INDEX events_rw         ON events (account, event_rw, event_time, seq) WHERE event_rw IS NOT NULL;
CREATE INDEX events_service    ON events (account, service, event_time, seq) WHERE service IS NOT NULL;
CREATE INDEX events_user       ON events (account, user_name, event_time, seq) WHERE user_name IS NOT NULL;
CREATE INDEX events_access_key ON events (account, access_key, event_time, seq) WHERE access_key IS NOT NULL;
CREATE INDEX events_source_ip  ON events (account, source_ip, event_time, seq) WHERE source_ip IS NOT NULL;
CREATE INDEX events_role       ON events (account, role_name, event_time, seq) WHERE role_name IS NOT NULL;
CREATE INDEX events_sensitive  ON events (account, sensitive, event_time, seq) WHERE sensitive IS NOT NULL;
CREATE INDEX events_error      ON events (account, error_code, event_time, seq) WHERE error_code IS NOT NULL;
CREATE INDEX events_category   ON events (account, category, event_time, seq) WHERE category IS NOT NULL;

-- One row per (event, resource): resourceType/resourceName and every referencedResources entry.
-- SQLite's event_resources_seq index is not repeated: no PostgreSQL query reads resources by seq.
CREATE TABLE event_resources (
    seq        bigint NOT NULL,
    account    bigint NOT NULL,
    event_time bigint NOT NULL,
    rtype      bigint NOT NULL,
    rname      bigint NOT NULL
) PARTITION BY RANGE (event_time);
CREATE INDEX event_resources_name ON event_resources (account, rname, event_time, seq);
CREATE INDEX event_resources_type ON event_resources (account, rtype, event_time, seq);

-- Every stored event once: the exact dedupe key (a unique constraint across all partitions) and
-- the seq -> event_time map that read_log and events_by_seq use to reach the right partition.
CREATE TABLE event_ids (
    account    bigint NOT NULL,
    event_key  bigint NOT NULL,
    event_id   bytea NOT NULL,
    event_time bigint NOT NULL,
    seq        bigint NOT NULL UNIQUE,
    PRIMARY KEY (account, event_key, event_id)
);

-- AccessKey usage, maintained in the ingest transaction: one row per key, kind, service and item.
CREATE TABLE key_usage (
    account     bigint NOT NULL,
    access_key  bigint NOT NULL,
    kind        smallint NOT NULL,
    service     bigint NOT NULL,
    item        bigint NOT NULL,
    item_type   bigint NOT NULL,
    first_used  bigint NOT NULL,
    last_used   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    source      text NOT NULL,
    calls       bigint NOT NULL,
    failed      bigint NOT NULL,
    PRIMARY KEY (account, access_key, kind, service, item, item_type)
);
CREATE INDEX key_usage_recent ON key_usage (account, access_key, kind, service, last_used DESC, item, item_type);
CREATE INDEX key_usage_any_service ON key_usage (account, access_key, kind, last_used DESC, item, item_type);

CREATE TABLE access_keys (
    access_key_id   text PRIMARY KEY,
    account_id      text NOT NULL,
    user_name       text NOT NULL,
    secret_sealed   bytea NOT NULL,
    status          text NOT NULL,
    allowed_actions text NOT NULL,
    created_ms      bigint NOT NULL
);
CREATE INDEX access_keys_account ON access_keys (account_id);

CREATE TABLE api_tokens (
    token_id     text PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    account_ids  text NOT NULL,
    all_accounts boolean NOT NULL,
    scopes       text NOT NULL,
    created_ms   bigint NOT NULL
);

CREATE TABLE meta (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
