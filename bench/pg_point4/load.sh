#!/bin/bash
# load.sh LABEL SRC SCHEMA FILE [FILE…]: `trailhouse ingest` of each FILE, in turn, into SCHEMA of
# trailhouse_bench (created if missing) with the code under SRC (PYTHONPATH), then its sizes.
set -eo pipefail
label=$1; src=$2; schema=$3; shift 3
DB=postgresql://postgres@127.0.0.1:5432/trailhouse_bench
psql -q -h 127.0.0.1 -U postgres -d trailhouse_bench -c "CREATE SCHEMA IF NOT EXISTS $schema"
URL="$DB?options=-csearch_path%3D$schema"
for f in "$@"; do
  echo "[$(date -u +%T)] $label $(basename $f) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd /tmp && PYTHONPATH=$src TRAILHOUSE_DATA_DIR=/tmp/pgm/data-$schema /work/wt-pg/.venv/bin/python -m trailhouse.cli ingest "$f" --db "$URL" --batch 20000 --json 2>/tmp/pgm/ingest-$schema.err) | python3 -c "import json,sys; r=json.load(sys.stdin); print('$label $(basename $f)', 'accepted', r['accepted'], 'events/s', r['eventsPerSecond'])"
  echo "[$(date -u +%T)] $label done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$src /work/wt-pg/.venv/bin/python /work/wt-pg/bench/pg_point4/sizes.py $schema
done
