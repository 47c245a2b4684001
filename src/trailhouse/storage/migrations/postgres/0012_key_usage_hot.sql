-- key_usage's upserts HOT (heap-only tuples) where they can be. Every batch upserts a row per key,
-- kind, service and item it touched, changing last_used, first_used, last_seq, source and the
-- counts; while last_used itself was in key_usage_recent and key_usage_any_service, no update
-- could stay on its page, and each wrote a new tuple plus an entry in all three indexes
-- (docs/benchmarks.md, "PostgreSQL").
--
-- The two indexes now end at last_day, the UTC day of last_used, instead of last_used and the
-- items: an upsert that leaves a row's last use on the same day changes no indexed column and is
-- HOT. A usage page reads a key's newest days through the index and sorts only their rows
-- (storage/sql/find.py, build_usage); ordering by (last_day, last_used) is ordering by
-- last_used, since the day never decreases as the time grows. Sorting all of a key's rows per
-- query instead (no last-use column indexed at all) was measured too: 1.7-2.4 ms at p50 and
-- 8-10 ms at p99 for the hot key of the 1M benchmark (2,396 IPs on one service), against 0.4 ms
-- through an ordered index.
--
-- ADD COLUMN … STORED rewrites the table, which also applies the fillfactor to every page: HOT
-- needs room on the row's own page.
DROP INDEX key_usage_recent;
DROP INDEX key_usage_any_service;
ALTER TABLE key_usage
    SET (fillfactor = 70),
    ADD COLUMN last_day bigint GENERATED ALWAYS AS (last_used / 86400000) STORED;
CREATE INDEX key_usage_recent ON key_usage (account, access_key, kind, service, last_day DESC);
CREATE INDEX key_usage_any_service ON key_usage (account, access_key, kind, last_day DESC);
