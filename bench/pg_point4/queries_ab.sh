#!/bin/bash
# bench.queries on the kept 1M PostgreSQL store, base code and new code alternately.
cd /tmp/pg-base
for v in "$@"; do
  if [ "${v%%-*}" = base ]; then src=/tmp/pg-base/src; else src=/work/wt-pg/src; fi
  echo "[$(date +%T)] $v load: $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$src /work/wt-pg/.venv/bin/python -m bench.queries bench/results/20261206-230133-1m.json --backend postgres --label $v --out /work/wt-pg/bench/results/20261206-230133-1m-queries-$v.json > /tmp/pgm/q-$v.log 2>&1
  echo "[$(date +%T)] $v done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
