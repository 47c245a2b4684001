-- The Merkle leaf leaves the event row, as on SQLite (0016_log_pending): ingest writes each new
-- event's (seq, account, leaf) to log_pending in the event's own transaction, the sequencer
-- reads it in seq order and deletes what it logged in the transaction that moves its watermark.
-- Deleted rows are dead tuples until a vacuum: autovacuum is told to vacuum this table after
-- 20,000 of them whatever its size (its default waits for 20 % of the table), and `maintain`
-- vacuums it too, for servers that run with autovacuum off.
CREATE TABLE log_pending (
    seq     bigint PRIMARY KEY,
    account integer NOT NULL,
    leaf    bytea                -- NULL: stored before 0009; the sequencer hashes the body
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000);
-- Events stored but not yet logged enter the queue with the leaf they have: event_ids is the
-- seq index, its event_time names the one partition to read (postgres.py, _BY_SEQ).
INSERT INTO log_pending (seq, account, leaf)
    SELECT i.seq, i.account, e.leaf
    FROM (SELECT seq, event_time, account FROM event_ids
          WHERE seq > (SELECT watermark FROM log_sequencer WHERE id = 1)) i
    CROSS JOIN LATERAL (SELECT leaf FROM events e
                        WHERE e.seq = i.seq AND e.event_time = i.event_time LIMIT 1) e;
-- Only the catalogue changes: existing rows keep the bytes until they are rewritten (VACUUM FULL
-- of a partition); new rows are stored without them at once.
ALTER TABLE events DROP COLUMN leaf;
