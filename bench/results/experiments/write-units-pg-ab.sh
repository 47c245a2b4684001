#!/bin/bash
# PG A/B: trailhouse ingest --workers 1 of 200k events into a fresh schema; wall, client CPU (writer + workers)
cd /work/main
for tag in $ORDER; do
  if [ $tag = old ]; then P=/tmp/base8d2/src; else P=/tmp/new9f0/src; fi
  S=wu_$tag_$RANDOM
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $S CASCADE; CREATE SCHEMA $S" 
  URL="postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D$S"
  PGCPU0=$(ps -C postgres -o cputimes= | awk '{s+=$1} END {print s}')
  echo "== $tag $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$P /usr/bin/time -f "client_cpu_s=%U+%S wall=%e maxrss_kb=%M" .venv/bin/python -m trailhouse ingest --db "$URL" --json --workers 1 /tmp/p200k.ndjson 2>&1 | tail -2
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA $S CASCADE"
done
