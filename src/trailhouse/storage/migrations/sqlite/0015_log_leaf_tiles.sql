-- The Merkle log's bytes per event (docs/benchmarks.md, "Merkle log: bytes per event"): at 1M
-- events the log took ~100 of the store's ~725 bytes per event.
--
-- 1. Which event each leaf is: one row per (account, 256-leaf tile) instead of one per event
--    with its (account, idx) index (~25-30 bytes per event). A row holds the seq of the tile's
--    first leaf and the gaps to each next one, as LEB128 varints of gap - 1 (storage/sql/
--    leaf_tiles.py): about a byte per event. The index on (account, first_seq) finds the row of
--    a seq (the leaf index of an event, for its proof) in one descent; the key (account, tile)
--    the rows of an entry bundle. The sequencer rewrites the row of the right edge as it grows.
--    The existing rows are converted by the migration's data step (storage/sql/leaf_tiles.py,
--    convert_log_leaves), in this transaction, which then drops log_leaves.
-- 2. Level-0 tiles keep no interior: that was 255 hashes per 256 events (~32 bytes per event)
--    for the one tile of a proof's path at level 0, which a proof now hashes (about 255
--    SHA-256s, ~0.1 ms: docs/benchmarks.md). Tiles of level 1 and up keep theirs.
--
-- An existing store's file does not get smaller until a VACUUM; the freed pages are reused.
CREATE TABLE log_leaf_tiles (
    account   INTEGER NOT NULL,
    tile      INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    gaps      BLOB NOT NULL,
    PRIMARY KEY (account, tile)
) WITHOUT ROWID;
CREATE UNIQUE INDEX log_leaf_tiles_seq ON log_leaf_tiles (account, first_seq);
UPDATE log_tiles SET interior = NULL WHERE level = 0 AND interior IS NOT NULL;
