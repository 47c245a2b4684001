-- Users, AccessKeys, source IPs, roles and resources have thousands of values each, so their
-- indexes lead with time (0005): a batch of recent events then writes the pages of its bucket
-- instead of a page per event. Led by the UTC day, a bucket held a whole day's entries, and a
-- batch of 1,000 events with as many distinct IPs still landed on a leaf of its own per event once
-- the day had a few hundred leaves (100,000 events a day: ~110 of the ~1,400 pages each commit
-- wrote, at 2M events, for the source IP alone; docs/benchmarks.md). Led by the UTC hour, the
-- bucket is 24 times smaller. A lookup still walks its window day by day and probes a day's hours
-- in one statement, in index order (storage/sql/find.py, DAY_BUCKETED_DRIVERS). Rebuilding
-- these indexes takes about 5 seconds per million events.
DROP INDEX events_user;
DROP INDEX events_access_key;
DROP INDEX events_source_ip;
DROP INDEX events_role;
DROP INDEX event_resources_name;
DROP INDEX event_resources_type;
CREATE INDEX events_user ON events (account, event_time / 3600000, user_name, event_time) WHERE user_name IS NOT NULL;
CREATE INDEX events_access_key ON events (account, event_time / 3600000, access_key, event_time) WHERE access_key IS NOT NULL;
CREATE INDEX events_source_ip ON events (account, event_time / 3600000, source_ip, event_time) WHERE source_ip IS NOT NULL;
CREATE INDEX events_role ON events (account, event_time / 3600000, role_name, event_time) WHERE role_name IS NOT NULL;
CREATE INDEX event_resources_name ON event_resources (account, event_time / 3600000, rname, event_time, seq);
CREATE INDEX event_resources_type ON event_resources (account, event_time / 3600000, rtype, event_time, seq);
