-- Strings that repeat (accounts, names, IPs, keys, resource names) are interned once in `terms`
-- and referenced by integer: indexes on small integers are a fraction of the size of text ones.
CREATE TABLE terms (
    id    INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE
);

-- seq is the arrival order; (event_time, seq) is the total order lookups page through.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    account      INTEGER NOT NULL,
    event_time   INTEGER NOT NULL,
    event_key    INTEGER NOT NULL,   -- 64-bit hash of eventId; equality re-checked on event_id
    request_key  INTEGER,            -- 64-bit hash of requestId, equality re-checked on request_id
    event_name   INTEGER NOT NULL,
    event_type   INTEGER,
    event_rw     INTEGER,
    category     INTEGER,
    service      INTEGER,
    user_name    INTEGER,
    access_key   INTEGER,
    source_ip    INTEGER,
    role_name    INTEGER,
    sensitive    INTEGER,
    error_code   INTEGER,
    event_id     TEXT NOT NULL,
    request_id   TEXT,
    body         BLOB NOT NULL
);
CREATE INDEX events_time       ON events (account, event_time);
CREATE INDEX events_key        ON events (account, event_key);
CREATE INDEX events_request    ON events (account, request_key, event_time) WHERE request_key IS NOT NULL;
CREATE INDEX events_name       ON events (account, event_name, event_time);
CREATE INDEX events_type       ON events (account, event_type, event_time) WHERE event_type IS NOT NULL;
CREATE INDEX events_rw         ON events (account, event_rw, event_time) WHERE event_rw IS NOT NULL;
CREATE INDEX events_service    ON events (account, service, event_time) WHERE service IS NOT NULL;
CREATE INDEX events_user       ON events (account, user_name, event_time) WHERE user_name IS NOT NULL;
CREATE INDEX events_access_key ON events (account, access_key, event_time) WHERE access_key IS NOT NULL;
CREATE INDEX events_source_ip  ON events (account, source_ip, event_time) WHERE source_ip IS NOT NULL;
CREATE INDEX events_role       ON events (account, role_name, event_time) WHERE role_name IS NOT NULL;
CREATE INDEX events_sensitive  ON events (account, sensitive, event_time) WHERE sensitive IS NOT NULL;
CREATE INDEX events_error      ON events (account, error_code, event_time) WHERE error_code IS NOT NULL;
CREATE INDEX events_category   ON events (account, category, event_time) WHERE category IS NOT NULL;

-- One row per (event, resource): resourceType/resourceName and every referencedResources entry.
CREATE TABLE event_resources (
    seq        INTEGER NOT NULL,
    account    INTEGER NOT NULL,
    event_time INTEGER NOT NULL,
    rtype      INTEGER NOT NULL,
    rname      INTEGER NOT NULL
);
CREATE INDEX event_resources_name ON event_resources (account, rname, event_time, seq);
CREATE INDEX event_resources_type ON event_resources (account, rtype, event_time, seq);
CREATE INDEX event_resources_seq  ON event_resources (seq);

-- The resource types each account has, so a short 2017-style type ("Instance") can be expanded
-- to the full ones ("ACS::ECS::Instance") without scanning events.
CREATE TABLE account_resource_types (
    account INTEGER NOT NULL,
    rtype   INTEGER NOT NULL,
    PRIMARY KEY (account, rtype)
) WITHOUT ROWID;

-- AccessKey usage, maintained in the ingest transaction: one row per key, kind, service and item.
CREATE TABLE key_usage (
    account     INTEGER NOT NULL,
    access_key  INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    service     INTEGER NOT NULL,
    item        INTEGER NOT NULL,
    item_type   INTEGER NOT NULL,
    first_used  INTEGER NOT NULL,
    last_used   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    PRIMARY KEY (account, access_key, kind, service, item, item_type)
) WITHOUT ROWID;
CREATE INDEX key_usage_recent ON key_usage (account, access_key, kind, service, last_used DESC, item, item_type);
CREATE INDEX key_usage_any_service ON key_usage (account, access_key, kind, last_used DESC, item, item_type);

CREATE TABLE access_keys (
    access_key_id   TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    secret_sealed   BLOB NOT NULL,
    status          TEXT NOT NULL,
    allowed_actions TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX access_keys_account ON access_keys (account_id);

CREATE TABLE api_tokens (
    token_id     TEXT PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    account_ids  TEXT NOT NULL,
    all_accounts INTEGER NOT NULL,
    scopes       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
);

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
