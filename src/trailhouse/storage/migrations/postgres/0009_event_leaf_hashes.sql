-- Each event's Merkle leaf hash, SHA-256(0x00 ‖ body), written by ingest, as on SQLite
-- (0011_event_leaf_hashes). NULL for events stored before it: the sequencer hashes those bodies.
ALTER TABLE events ADD COLUMN leaf bytea;
