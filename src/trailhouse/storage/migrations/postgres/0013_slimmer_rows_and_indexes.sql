-- Disk per event (docs/benchmarks.md, "PostgreSQL (issue 15, point 4)"): at 1M events the store
-- was 1,574 bytes per event after a bulk load, 28 % of it in event_ids and 45 % in the
-- per-partition indexes of events, most of whose entries are (account, term id, event_time, seq).
--
-- 1. Term ids are int4. PostgreSQL aligns an int8 to 8 bytes, so (account, term, event_time, seq)
--    takes 24 bytes of key with two int4s where it took 32; every term column of events,
--    event_resources, key_usage and account_resource_types shrinks, and so do their heap rows.
--    The terms sequence becomes an int4 one: past 2,147,483,647 terms it refuses the next new term
--    (nextval's "reached maximum value"), which the store reports as such (postgres.py, _intern),
--    instead of an id that wraps. A store whose ids no longer fit stops here with that message.
-- 2. event_ids no longer holds the eventId text: its key is (event_key, account, n), where n
--    numbers the distinct eventIds of one account sharing a 64-bit event_key (0 unless two ever
--    collide). Ingest compares the eventId exactly against the event's own row in events on a
--    hash hit, and a new id that collides takes the next n (postgres.py, _new_events). The key is
--    24 bytes with its tuple header (event_key, then the int4 and the int2 in one 8-byte word)
--    where the old one, with the id's ~33 bytes, was 64; the heap row drops the same text.
-- 3. events loses its eventId index (account, event_key): an eventId lookup probes event_ids once
--    and reads the event's row by (seq, event_time) (storage/sql/find.py, ``event_ids_lookup``),
--    instead of probing every month's index.
-- 4. The requestId index is (account, request_key): a requestId names a handful of events, which a
--    lookup sorts; the time and seq made each entry 40 bytes instead of 24.
-- 5. events' primary key (seq, event_time) becomes an index on seq: probes by seq name the time
--    too (which picks the partition), and event_ids' unique seq already keeps seqs unique.
-- 6. partition_packs records when each partition's indexes were rebuilt packed (maintain(),
--    pg_partitions.pack_months): every index here is rebuilt now, so every partition is.
--
-- In place: each ALTER … TYPE rewrites its table once (one pass over each partition, however
-- many columns change) and rebuilds its indexes; event_ids is copied into a new table. The whole
-- migration is one transaction holding these tables: run `trailhouse migrate` before starting the
-- new version (docs/deployment.md, "Upgrades"). 1M events: see docs/benchmarks.md.
DO $$
DECLARE
    top bigint := (SELECT max(id) FROM terms);
    issued bigint := pg_sequence_last_value(pg_get_serial_sequence('terms', 'id')::regclass);
BEGIN
    IF coalesce(greatest(top, issued), 0) > 2147483647 THEN
        RAISE EXCEPTION 'term ids up to % have been issued: more than int4 term ids can hold (2147483647);'
            ' this store cannot take migration 0013 and needs the version before it', greatest(top, issued);
    END IF;
END $$;

ALTER TABLE terms ALTER COLUMN id TYPE integer;

-- Dropped before the rewrite, so that it does not rebuild them.
DROP INDEX events_key;
DROP INDEX events_request;
ALTER TABLE events DROP CONSTRAINT events_pkey;

ALTER TABLE events
    ALTER COLUMN account TYPE integer,
    ALTER COLUMN event_name TYPE integer,
    ALTER COLUMN event_type TYPE integer,
    ALTER COLUMN event_rw TYPE integer,
    ALTER COLUMN category TYPE integer,
    ALTER COLUMN service TYPE integer,
    ALTER COLUMN user_name TYPE integer,
    ALTER COLUMN access_key TYPE integer,
    ALTER COLUMN source_ip TYPE integer,
    ALTER COLUMN role_name TYPE integer,
    ALTER COLUMN error_code TYPE integer;
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_request ON events (account, request_key) WHERE request_key IS NOT NULL;

ALTER TABLE event_resources
    ALTER COLUMN account TYPE integer,
    ALTER COLUMN rtype TYPE integer,
    ALTER COLUMN rname TYPE integer;

ALTER TABLE account_resource_types
    ALTER COLUMN account TYPE integer,
    ALTER COLUMN rtype TYPE integer;

ALTER TABLE key_usage
    ALTER COLUMN account TYPE integer,
    ALTER COLUMN access_key TYPE integer,
    ALTER COLUMN service TYPE integer,
    ALTER COLUMN item TYPE integer,
    ALTER COLUMN item_type TYPE integer;

-- int8s first, then the int4 and the int2: no alignment padding in the row.
CREATE TABLE event_ids_slim (
    event_key  bigint NOT NULL,
    event_time bigint NOT NULL,
    seq        bigint NOT NULL,
    account    integer NOT NULL,
    n          smallint NOT NULL
);
INSERT INTO event_ids_slim (event_key, event_time, seq, account, n)
    SELECT event_key, event_time, seq, account::integer,
           (row_number() OVER (PARTITION BY account, event_key ORDER BY seq) - 1)::smallint
    FROM event_ids ORDER BY seq;
DROP TABLE event_ids;
ALTER TABLE event_ids_slim RENAME TO event_ids;
-- event_key first: every look-up names both the key and the account, and this order packs the
-- int4 and the int2 into one word.
ALTER TABLE event_ids
    ADD CONSTRAINT event_ids_pkey PRIMARY KEY (event_key, account, n),
    ADD CONSTRAINT event_ids_seq_key UNIQUE (seq);

CREATE TABLE partition_packs (
    name       text PRIMARY KEY,
    heap_bytes bigint NOT NULL,
    packed_ms  bigint NOT NULL
);
INSERT INTO partition_packs (name, heap_bytes, packed_ms)
    SELECT c.relname, pg_relation_size(c.oid), (extract(epoch FROM now()) * 1000)::bigint
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN ('events'::regclass, 'event_resources'::regclass);
