-- Each event's Merkle leaf hash, SHA-256(0x00 ‖ body) of its exact stored body, written by the
-- ingest transaction while the body is in memory, so that the log sequencer reads 32 bytes per
-- event instead of decompressing the body (issue 12: the log's cost to ingest). NULL for events
-- stored before this migration: the sequencer hashes their bodies as before.
ALTER TABLE events ADD COLUMN leaf BLOB;
