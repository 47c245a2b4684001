-- Each account's Merkle log (service/integrity). The sequencer row also holds a lease (owner,
-- lease_until) so that of several processes or nodes only one does the hashing at a time.
--, as on SQLite (0007_merkle_log). The one
-- log_sequencer row is the sequencer lock: a node sequences while holding it FOR UPDATE.
CREATE TABLE log_sequencer (
    id          integer PRIMARY KEY CHECK (id = 1),
    watermark   bigint NOT NULL,
    owner       text NOT NULL,
    lease_until bigint NOT NULL
);
INSERT INTO log_sequencer VALUES (1, 0, '', 0);
CREATE TABLE log_heads (
    account    bigint PRIMARY KEY,
    size       bigint NOT NULL,
    root       bytea NOT NULL,
    frontier   bytea NOT NULL,
    checkpoint text NOT NULL,
    updated_ms bigint NOT NULL
);
CREATE TABLE log_tiles (
    account bigint NOT NULL,
    level   integer NOT NULL,
    idx     bigint NOT NULL,
    hashes  bytea NOT NULL,
    PRIMARY KEY (account, level, idx)
);
CREATE TABLE log_leaves (
    seq     bigint PRIMARY KEY,
    account bigint NOT NULL,
    idx     bigint NOT NULL
);
CREATE UNIQUE INDEX log_leaves_index ON log_leaves (account, idx);
