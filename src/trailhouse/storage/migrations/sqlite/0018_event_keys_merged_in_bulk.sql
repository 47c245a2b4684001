-- The eventId dedupe leaves the events table for two of its own. Its hashes are random, so the
-- index events_key (account, event_key) took each ingested event onto a leaf page of its own:
-- a batch of 1,000 events dirtied ~1,090 of its pages, 43 % of all the pages the batch's commit
-- wrote into a 2M store (docs/benchmarks.md, "The eventId dedupe merged in bulk").
--
-- event_keys_recent takes the keys of new events, led by their seq's generation (seq >> 12): a
-- batch's keys land in the few pages of the current generation. When it holds enough of them the
-- writer moves them all, sorted, into event_keys (SqliteStore._merge_recent_keys), where they
-- share the leaves they land on with each other instead of taking one each. event_keys_state
-- holds the seq up to which every event's key is in event_keys; every later event's key is in
-- event_keys_recent. A look-up reads both in one statement, so it sees every stored event.
CREATE TABLE event_keys (
    account   INTEGER NOT NULL,
    event_key INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (account, event_key, seq)
) WITHOUT ROWID;
CREATE TABLE event_keys_recent (
    gen       INTEGER NOT NULL,
    account   INTEGER NOT NULL,
    event_key INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (gen, account, event_key, seq)
) WITHOUT ROWID;
CREATE TABLE event_keys_state (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    merged_seq INTEGER NOT NULL
);
INSERT INTO event_keys (account, event_key, seq)
    SELECT account, event_key, seq FROM events INDEXED BY events_key ORDER BY account, event_key, seq;
INSERT INTO event_keys_state (one, merged_seq) VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM events));
DROP INDEX events_key;
