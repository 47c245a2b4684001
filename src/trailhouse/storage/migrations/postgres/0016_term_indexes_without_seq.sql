-- Disk per event (docs/benchmarks.md, "PostgreSQL: seq out of the term indexes"): the indexes
-- that drive lookups were keyed (account, term, event_time, seq), 24 bytes of key and 36 with the
-- tuple header and line pointer. seq is only the tiebreak of events of one second; keyed
-- (account, term, event_time) an entry is 28 bytes. A page still comes out in (event_time, seq)
-- order: the index gives event_time, and PostgreSQL sorts the events of one second by seq
-- (Incremental Sort); the keyset's row comparison (event_time, seq) < (t, s) uses the index for
-- event_time <= t and checks seq on the rows of that second. Measured on 200k events: the lookup
-- indexes 740.9 -> 601.7 bytes per event as ingested, 439.7 -> 375.5 rebuilt packed.
--
-- The new indexes are built full (fillfactor 100, as maintain() packs an ended month); a
-- partition created later inherits that. Rebuilding them reads every partition once per index:
-- run `trailhouse migrate` before starting the new version (docs/deployment.md, "Upgrades").
DROP INDEX events_time, events_name, events_type, events_service, events_user, events_access_key,
    events_source_ip, events_role, events_sensitive, events_error;
CREATE INDEX events_time ON events (account, event_time) WITH (fillfactor = 100);
CREATE INDEX events_name ON events (account, event_name, event_time) WITH (fillfactor = 100);
CREATE INDEX events_type ON events (account, event_type, event_time) WITH (fillfactor = 100)
    WHERE event_type IS NOT NULL;
CREATE INDEX events_service ON events (account, service, event_time) WITH (fillfactor = 100)
    WHERE service IS NOT NULL;
CREATE INDEX events_user ON events (account, user_name, event_time) WITH (fillfactor = 100)
    WHERE user_name IS NOT NULL;
CREATE INDEX events_access_key ON events (account, access_key, event_time) WITH (fillfactor = 100)
    WHERE access_key IS NOT NULL;
CREATE INDEX events_source_ip ON events (account, source_ip, event_time) WITH (fillfactor = 100)
    WHERE source_ip IS NOT NULL;
CREATE INDEX events_role ON events (account, role_name, event_time) WITH (fillfactor = 100)
    WHERE role_name IS NOT NULL;
CREATE INDEX events_sensitive ON events (account, sensitive, event_time) WITH (fillfactor = 100)
    WHERE sensitive IS NOT NULL;
CREATE INDEX events_error ON events (account, error_code, event_time) WITH (fillfactor = 100)
    WHERE error_code IS NOT NULL;
