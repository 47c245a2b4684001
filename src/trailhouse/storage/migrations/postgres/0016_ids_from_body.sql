-- The eventId and requestId texts leave the event row (SQLite: migrations 0014 and 0017). Their one
-- copy is the body; the row keeps their 64-bit hashes (event_ids' key, events_request), and a
-- hash hit is checked against the body by the store (storage/sql/find.py, FindQuery.holds_ids; the
-- dedupe's check in PostgresStore._stored_event_ids). The two columns took ~74 bytes per event
-- with their headers.
-- PostgreSQL drops a column from its catalogue only: rows written before keep their bytes until
-- their partition is rewritten (VACUUM FULL, or pg_repack without the lock); new rows are smaller
-- at once, and a month's partition past retention is dropped whole (docs/deployment.md).
ALTER TABLE events DROP COLUMN event_id, DROP COLUMN request_id;
