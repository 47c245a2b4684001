#!/bin/bash
# lookups_ab.sh RUN…: lookups.py (20 walks) on the kept stores, base code on pgm_ab_base_2, new on
# pgm_ab_new_2, alternately; JSON beside the results.
for run in "$@"; do
  if [ "${run%%-*}" = base ]; then src=/tmp/pg-base/src; schema=pgm_ab_base_2; else src=/work/wt-pg/src; schema=pgm_ab_new_2; fi
  echo "[$(date -u +%T)] $run load: $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$src /work/wt-pg/.venv/bin/python /work/wt-pg/bench/pg_point4/lookups.py $schema $run ${WALKS:-20} --json /work/wt-pg/bench/results/experiments/pg-0013-lookups-$run.json | grep -E "${SHOW:-.}"
done
