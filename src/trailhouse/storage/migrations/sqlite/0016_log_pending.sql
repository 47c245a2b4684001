-- The Merkle leaf leaves the event row (0011 put it there): once an event is logged its leaf is
-- in the level-0 tile, so events.leaf was ~33 bytes per event kept for nothing. Ingest now
-- writes the leaves of each transaction's events to log_pending, in that transaction, as one row
-- (storage/sql/pending.py); the sequencer reads the queue in seq order and deletes what it logged
-- in the transaction that moves its watermark, so a crash anywhere loses no leaf and logs none
-- twice. The queue holds only what is not yet logged: its pages are reused as it drains.
CREATE TABLE log_pending (
    last_seq  INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    account   INTEGER,             -- the account of all the row's events, or NULL: see accounts
    accounts  BLOB,                -- else each event's account, an int64 (little-endian) each
    leaves    BLOB                 -- 32 bytes an event; NULL: one event stored before 0011
);
-- Events stored but not yet logged are queued with the leaf they have, a row each.
INSERT INTO log_pending (last_seq, first_seq, account, accounts, leaves)
    SELECT seq, seq, account, NULL, leaf FROM events
    WHERE seq > (SELECT watermark FROM log_sequencer WHERE id = 1) ORDER BY seq;
-- SQLite rewrites every row of events to drop it (as 0014): the rows shrink inside their pages,
-- so an existing store's file gets smaller only after a VACUUM; new events are smaller at once.
ALTER TABLE events DROP COLUMN leaf;
