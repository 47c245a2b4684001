-- The eventId dedupe leaves the events table for two of its own. Its hashes are random, so the
-- index events_key (account, event_key) took each ingested event onto a leaf page of its own:
-- a batch of 1,000 events dirtied ~1,100 of its pages, 43 % of all the pages the batch's commit
-- wrote into a 2M store (docs/benchmarks.md, "The eventId dedupe merged in bulk").
--
-- event_keys_recent takes the keys of new events, led by the key's slice (its top 4 bits: 16
-- ranges of keys) and its seq's generation (seq >> 12): a batch's keys land in a few pages of the
-- current generation. When enough have gathered, the writer moves the fullest slice's keys,
-- sorted, into event_keys (storage/sqlite_keys.py), where they share the leaves of their range
-- instead of taking one each; a slice at a time, so that no commit waits for a whole merge.
-- event_keys_state holds, per slice, the seq up to which every event's key of that slice is in
-- event_keys; every later one is in event_keys_recent. A look-up reads both tables in one
-- statement, so it sees every stored event whatever a merge moves meanwhile.
CREATE TABLE event_keys (
    account   INTEGER NOT NULL,
    event_key INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (account, event_key, seq)
) WITHOUT ROWID;
CREATE TABLE event_keys_recent (
    slice     INTEGER NOT NULL,
    gen       INTEGER NOT NULL,
    account   INTEGER NOT NULL,
    event_key INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (slice, gen, account, event_key, seq)
) WITHOUT ROWID;
CREATE TABLE event_keys_state (
    slice      INTEGER PRIMARY KEY,
    merged_seq INTEGER NOT NULL
);
INSERT INTO event_keys (account, event_key, seq)
    SELECT account, event_key, seq FROM events INDEXED BY events_key ORDER BY account, event_key, seq;
INSERT INTO event_keys_state (slice, merged_seq)
    WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 15)
    SELECT n, (SELECT COALESCE(MAX(seq), 0) FROM events) FROM s;
DROP INDEX events_key;
