-- EventRW and EventCategory have two values each and neither is rare (Write and Data events are
-- 10-20 % of a trail): the time index with a residual filter finds a page of them after a few
-- hundred rows, so their indexes cost ~60 bytes and two B-tree writes per event for nothing.
-- EventType keeps its index: ConsoleSignout is well under 1 % of events.
DROP INDEX events_rw;
DROP INDEX events_category;
-- STS tokens (STS.…) live an hour and are not what GetAccessKeyLastUsed* is asked about; they
-- were two thirds of key_usage's rows. Their events stay searchable by EventAccessKeyId.
DELETE FROM key_usage WHERE access_key IN (SELECT id FROM terms WHERE value >= 'STS.' AND value < 'STS/');
