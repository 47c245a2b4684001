#!/bin/sh
# requestIds equal to their eventId out of the requestId index: A/B over HTTP into a 10M SQLite
# store loaded by the old code, old = 84839ba, new = the change, alternating (http-ingest-10m-ab.py).
#   git archive 84839ba src | tar -x -C /tmp/ab-old; cp -r src /tmp/ab-new/
#   TRAILHOUSE_DATA_DIR=/tmp/s10m PYTHONPATH=/tmp/ab-old/src python -m trailhouse ingest \
#       --db sqlite:////tmp/s10m/store.db --workers 1 $DATA/part-*.ndjson
set -e
DATA=bench/data/s7-n10000000-e20261208-h100000-f100000
for run in ${RUNS:-old-1 new-1 new-2 old-2 old-3 new-3}; do
    PYTHONPATH=/tmp/ab-${run%-*}/src:. .venv/bin/python bench/results/experiments/http-ingest-10m-ab.py \
        sqlite:////tmp/s10m/store.db /tmp/s10m "$DATA" "$run"
done
