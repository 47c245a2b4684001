#!/bin/sh
# SQLite HTTP ingest into a 10M store, three codes alternating (http-ingest-10m-ab.py):
#   old  = 84839ba (requestId index entries for every event, the term indexes led by the day)
#   mid  = bb7ee25 (no requestId entry for a requestId that is its eventId)
#   hour = the term indexes led by the hour (sqlite/0019)
# old and mid write into /tmp/s10m (loaded by 84839ba: trailhouse ingest --workers 1 of the
# dataset's parts), hour into a copy of it migrated by `trailhouse migrate` (/tmp/s10m-hour).
#   git archive 84839ba src | tar -x -C /tmp/ab-old; git archive bb7ee25 src | tar -x -C /tmp/ab-mid
#   cp -r src /tmp/ab-hour/
set -e
DATA=bench/data/s7-n10000000-e20261208-h100000-f100000
for run in ${RUNS:-old-1 mid-1 hour-1 hour-2 mid-2 old-2 old-3 mid-3 hour-3}; do
    code=${run%-*}
    dir=/tmp/s10m
    [ "$code" = hour ] && dir=/tmp/s10m-hour
    PYTHONPATH=/tmp/ab-$code/src:. .venv/bin/python bench/results/experiments/http-ingest-10m-ab.py \
        sqlite:///$dir/store.db $dir "$DATA" "$run"
done
