-- An eventId is unique per account, whatever its time. Bucketed by UTC day (0003), the eventId
-- index could only find a re-sent event in the day of its eventTime, so an event re-sent with
-- another time (a re-generated export, a clock fix) was stored twice. The index now spans every
-- day; the events stored twice before are removed when this migration is applied, keeping the
-- first arrival (SqliteStore._remove_duplicate_events).
DROP INDEX events_key;
CREATE INDEX events_key ON events (account, event_key);
