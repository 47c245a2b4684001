-- The Merkle leaf leaves the event row, as on SQLite (0016_log_pending): ingest writes the leaves
-- of each transaction's events to log_pending, in that transaction, as one row
-- (storage/sql/pending.py); the sequencer reads it in seq order and deletes what it logged in the
-- transaction that moves its watermark.
-- Deleted rows are dead tuples until a vacuum. A row is a transaction's events (its leaves,
-- ~32 kB for 1,000 events, in TOAST chunks of ~2 kB), so autovacuum is told to vacuum the table
-- after 100 dead rows and its TOAST after 2,000 dead chunks, whatever their size (the default
-- waits for 20 % of the table); `maintain` vacuums it too, for servers with autovacuum off.
CREATE TABLE log_pending (
    last_seq  bigint PRIMARY KEY,
    first_seq bigint NOT NULL,
    account   integer,             -- the account of all the row's events, or NULL: see accounts
    accounts  bytea,               -- else each event's account, an int64 (little-endian) each
    leaves    bytea                -- 32 bytes an event; NULL: one event stored before 0009
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100,
       toast.autovacuum_vacuum_scale_factor = 0, toast.autovacuum_vacuum_threshold = 2000);
-- Hashes do not compress: stored out of line (a transaction's leaves pass 2 kB) without trying.
ALTER TABLE log_pending ALTER COLUMN leaves SET STORAGE EXTERNAL,
    ALTER COLUMN accounts SET STORAGE EXTERNAL;
-- Events stored but not yet logged are queued with the leaf they have, a row each: event_ids is
-- the seq index, its event_time names the one partition to read (postgres.py, _BY_SEQ).
INSERT INTO log_pending (last_seq, first_seq, account, accounts, leaves)
    SELECT i.seq, i.seq, i.account, NULL, e.leaf
    FROM (SELECT seq, event_time, account FROM event_ids
          WHERE seq > (SELECT watermark FROM log_sequencer WHERE id = 1)) i
    CROSS JOIN LATERAL (SELECT leaf FROM events e
                        WHERE e.seq = i.seq AND e.event_time = i.event_time LIMIT 1) e;
-- Only the catalogue changes: existing rows keep the bytes until they are rewritten (VACUUM FULL
-- of a partition); new rows are stored without them at once.
ALTER TABLE events DROP COLUMN leaf;
