-- Users, AccessKeys, source IPs, roles and resources have thousands of values each. Indexed by
-- (account, value, time), every ingested event landed on a leaf page of its own in each of these
-- indexes, so a commit wrote a page per event per index and the cost grew with the store. Led by
-- the UTC day, the events of a batch share the pages of their day; a lookup walks the days of its
-- window one by one (storage/sql.py, DAY_BUCKETED_DRIVERS), newest first, and stops when its
-- page is full. Rebuilding these indexes takes about a minute per million events.
DROP INDEX events_user;
DROP INDEX events_access_key;
DROP INDEX events_source_ip;
DROP INDEX events_role;
DROP INDEX event_resources_name;
DROP INDEX event_resources_type;
CREATE INDEX events_user ON events (account, event_time / 86400000, user_name, event_time) WHERE user_name IS NOT NULL;
CREATE INDEX events_access_key ON events (account, event_time / 86400000, access_key, event_time) WHERE access_key IS NOT NULL;
CREATE INDEX events_source_ip ON events (account, event_time / 86400000, source_ip, event_time) WHERE source_ip IS NOT NULL;
CREATE INDEX events_role ON events (account, event_time / 86400000, role_name, event_time) WHERE role_name IS NOT NULL;
CREATE INDEX event_resources_name ON event_resources (account, event_time / 86400000, rname, event_time, seq);
CREATE INDEX event_resources_type ON event_resources (account, event_time / 86400000, rtype, event_time, seq);
