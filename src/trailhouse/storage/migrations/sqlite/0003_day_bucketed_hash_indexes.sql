-- eventId and requestId hashes are random: indexed by themselves, every ingested event dirtied
-- its own leaf page in each of the two indexes, and those page writes were a third of the cost
-- of an ingest commit. Bucketed by the event's UTC day, a batch of recent events touches a few
-- pages; a look-up probes each day of its (bounded) window.
DROP INDEX events_key;
DROP INDEX events_request;
CREATE INDEX events_key ON events (account, event_time / 86400000, event_key);
CREATE INDEX events_request ON events (account, event_time / 86400000, request_key) WHERE request_key IS NOT NULL;
