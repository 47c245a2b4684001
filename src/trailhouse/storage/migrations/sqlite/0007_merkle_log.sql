-- Each account's Merkle log (service/integrity). The sequencer row also holds a lease (owner,
-- lease_until) so that of several processes or nodes only one does the hashing at a time.
--: the sequencer's watermark (the last seq taken
-- into the logs), each log's head (size, root, frontier, signed checkpoint), its C2SP tiles, and
-- which event each leaf is. Existing events are sequenced from seq 1 when the service starts.
CREATE TABLE log_sequencer (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    watermark   INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
INSERT INTO log_sequencer VALUES (1, 0, '', 0);
CREATE TABLE log_heads (
    account    INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    frontier   BLOB NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE log_tiles (
    account INTEGER NOT NULL,
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hashes  BLOB NOT NULL,
    PRIMARY KEY (account, level, idx)
) WITHOUT ROWID;
CREATE TABLE log_leaves (
    seq     INTEGER PRIMARY KEY,
    account INTEGER NOT NULL,
    idx     INTEGER NOT NULL
);
CREATE UNIQUE INDEX log_leaves_index ON log_leaves (account, idx);
