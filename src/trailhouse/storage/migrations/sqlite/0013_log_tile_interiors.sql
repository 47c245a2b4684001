-- The interior of each full Merkle log tile (service/integrity/tiles.py, tile_interior): the
-- 255 hashes above its 256, written by the sequencer when it completes the tile, so that an
-- inclusion proof reads one row per tile level instead of hashing each tile it crosses again.
-- NULL for partial tiles and for full tiles written before this migration (a proof through
-- one of those hashes it, as before).
ALTER TABLE log_tiles ADD COLUMN interior BLOB;
