-- The Merkle leaf leaves the event row (0011 put it there): once an event is logged its leaf is
-- in the level-0 tile, so events.leaf was ~33 bytes per event kept for nothing. Ingest now
-- writes each new event's (seq, account, leaf) to log_pending in the event's own transaction;
-- the sequencer reads the queue in seq order and deletes what it logged in the transaction that
-- moves its watermark, so a crash anywhere loses no leaf and logs none twice. The queue holds
-- only what is not yet logged: its pages are reused as it drains.
-- account is in the queue so that the sequencer never reads events (their pages hold the bodies).
CREATE TABLE log_pending (
    seq     INTEGER PRIMARY KEY,
    account INTEGER NOT NULL,
    leaf    BLOB                 -- NULL: stored before 0011; the sequencer hashes the body
);
-- Events stored but not yet logged enter the queue with the leaf they have.
INSERT INTO log_pending (seq, account, leaf)
    SELECT seq, account, leaf FROM events
    WHERE seq > (SELECT watermark FROM log_sequencer WHERE id = 1) ORDER BY seq;
-- SQLite rewrites every row of events to drop it (as 0014): the rows shrink inside their pages,
-- so an existing store's file gets smaller only after a VACUUM; new events are smaller at once.
ALTER TABLE events DROP COLUMN leaf;
