-- The eventId text leaves the event row, as the requestId did in 0014: the body holds it, and the
-- only readers of the column were the exact checks behind an event_key hash hit (the dedupe of a
-- re-sent event, an eventId lookup), which now read it from the body (event_id_of, a function
-- every connection registers). The column took ~37 of the 600 bytes an event may take on disk.
-- SQLite rewrites every row of events to drop it (as 0014 and 0016): the rows shrink inside their
-- pages, so an existing store's file gets smaller only after a VACUUM; new events are smaller at once.
ALTER TABLE events DROP COLUMN event_id;
