-- The Merkle log's bytes per event, as on SQLite (0015_log_leaf_tiles):
--
-- 1. Which event each leaf is: one row per (account, 256-leaf tile) instead of one per event,
--    holding the seq of the tile's first leaf and the gaps to each next one as LEB128 varints
--    of gap - 1 (storage/sql/leaf_tiles.py), about a byte per event. The existing rows are
--    converted by the migration's data step (convert_log_leaves) in this transaction, which
--    then drops log_leaves.
-- 2. Level-0 tiles keep no interior (~32 bytes per event, TOASTed): a proof hashes its one
--    level-0 tile. Tiles of level 1 and up keep theirs.
--
-- The freed space is reused after (auto)vacuum; VACUUM FULL log_tiles gives it back to the OS.
-- first_seq first: the int8, then the two int4s, with no alignment padding.
CREATE TABLE log_leaf_tiles (
    first_seq bigint NOT NULL,
    account   integer NOT NULL,
    tile      integer NOT NULL,
    gaps      bytea NOT NULL,
    PRIMARY KEY (account, tile)
);
CREATE UNIQUE INDEX log_leaf_tiles_seq ON log_leaf_tiles (account, first_seq);
UPDATE log_tiles SET interior = NULL WHERE level = 0 AND interior IS NOT NULL;
