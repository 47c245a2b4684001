-- The requestId text leaves the event row: a requestId lookup finds its candidates by the 64-bit
-- request_key hash (events_request) and checks each hit against the body (request_id_of, a
-- function every connection registers). The column took ~37 of the 600 bytes an event may
-- take on disk, for a check that runs on hash hits only.
-- SQLite rewrites every row of events to drop it. The rows shrink in place: an existing store's
-- file does not get smaller until a VACUUM; new events take the smaller rows at once.
ALTER TABLE events DROP COLUMN request_id;
