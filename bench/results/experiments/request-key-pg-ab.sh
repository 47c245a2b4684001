#!/bin/sh
# requestIds equal to their eventId out of the requestId index: A/B over HTTP into the 10M schema
# exp_sizing that pg-sizing-10m.py built, old = 84839ba, new = the change, alternating; each run
# restarts PostgreSQL with its defaults, waits for serve's Merkle log and posts 50,000 fresh events.
#   git archive 84839ba src | tar -x -C /tmp/ab-old; cp -r src /tmp/ab-new/
set -e
DATA=bench/data/s7-n10000000-e20261208-h100000-f100000
for run in ${RUNS:-old-1 new-1 new-2 old-2 old-3 new-3}; do
    PYTHONPATH=/tmp/ab-${run%-*}/src:. .venv/bin/python bench/results/experiments/pg-sizing-10m.py "$DATA" "default-$run"
done
