#!/bin/bash
# A/B at 10M: old code (c3c004b) on the old-schema store, new code on a migrated copy; 100k fresh events in batches of 1,000, in process.
cd /work/main
W=bench/work
cp $W/ab10m-old.db $W/ab10m-new.db
echo "migrate:"; /usr/bin/time -f "%e s, %M KB" env PYTHONPATH=src .venv/bin/python -m trailhouse migrate --db sqlite:////work/main/$W/ab10m-new.db 2>&1 | tail -3
for r in 1 2; do
  PYTHONPATH=/tmp/old/src:. .venv/bin/python bench/results/experiments/dedupe-merged-ab.py $W/ab10m-old.db $W/ab-fresh-100k.ndjson old
  PYTHONPATH=src:. .venv/bin/python bench/results/experiments/dedupe-merged-ab.py $W/ab10m-new.db $W/ab-fresh-100k.ndjson new
done
