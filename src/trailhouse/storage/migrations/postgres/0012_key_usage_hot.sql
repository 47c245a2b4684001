-- key_usage without last_used in any index, so that its upserts can be HOT (heap-only tuples).
-- Every batch upserts a row per key, kind, service and item it touched, changing last_used,
-- first_used, last_seq, source and the counts; while last_used was in key_usage_recent and
-- key_usage_any_service, no such update could stay on its page, and each wrote a new tuple plus an
-- entry in all three indexes (docs/benchmarks.md, "PostgreSQL"). Now only the primary key
-- (account, access_key, kind, service, item, item_type) indexes the table, none of whose columns an
-- upsert changes. A usage page reads a key's rows (one service, or every service) through the
-- primary key's prefix and sorts them by last use at query time: a key has tens to thousands of
-- rows, not millions.
DROP INDEX key_usage_recent;
DROP INDEX key_usage_any_service;
-- HOT needs room on the row's own page. Pages written from now on keep 30 % free for the new
-- versions; pages written before keep their fill until pruning frees the dead versions that
-- updates leave behind (no table rewrite here: it would lock key_usage while it runs).
ALTER TABLE key_usage SET (fillfactor = 70);
