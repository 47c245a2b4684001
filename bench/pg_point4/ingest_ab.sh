#!/bin/bash
# As ingest_ab.sh, then a second ingest of $4 (a later day) into the same store: the steady state.
label=$1; src=$2; file=$3; file2=$4; schema=pgm_$RANDOM
DB=postgresql://postgres@127.0.0.1:5432/trailhouse_bench
psql -q -h 127.0.0.1 -U postgres -d trailhouse_bench -c "CREATE SCHEMA $schema"
URL="$DB?options=-csearch_path%3D$schema"
stats() { sleep 1; psql -At -h 127.0.0.1 -U postgres -d trailhouse_bench -c "SET search_path=$schema; SELECT '$label $1 key_usage: rows ' || n_live_tup || ', updates ' || n_tup_upd || ', HOT ' || n_tup_hot_upd || ', heap MB ' || round(pg_relation_size('key_usage')/1e6,1) || ', index MB ' || round(pg_indexes_size('key_usage')/1e6,1) FROM pg_stat_user_tables WHERE relid = 'key_usage'::regclass; SELECT '$label $1 schema MB ' || round(sum(pg_total_relation_size(c.oid))/1e6,1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind IN ('r','m');" | grep -v SET; }
for f in "$file" "$file2"; do
  cd /tmp && PYTHONPATH=$src TRAILHOUSE_DATA_DIR=/tmp/pgm/data-$schema /work/wt-pg/.venv/bin/python -m trailhouse.cli ingest "$f" --db "$URL" --batch 20000 --json 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); print('$label $(basename $f)', 'accepted', r['accepted'], 'events/s', r['eventsPerSecond'])"
  stats $(basename $f)
done
psql -q -h 127.0.0.1 -U postgres -d trailhouse_bench -c "DROP SCHEMA $schema CASCADE" 2>/dev/null
