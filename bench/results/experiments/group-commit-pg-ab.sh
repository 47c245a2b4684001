#!/bin/sh
# Group commit on PostgreSQL, A/B over HTTP into the 10M schema exp_where: old = 20e5406 (one
# transaction per request), new = the working tree with storage/group_commit.py, alternating.
#   git archive 20e5406 src | tar -x -C /tmp/ab-old; cp -r src /tmp/ab-new/
set -e
DATA=bench/data/s7-n10000000-e20261208-h100000-f100000
for run in ${RUNS:-old-1 new-1 new-2 old-2 old-3 new-3}; do
    PYTHONPATH=/tmp/ab-${run%-*}/src:. .venv/bin/python bench/results/experiments/group-commit-pg-ab.py "$run" "$DATA"
done
