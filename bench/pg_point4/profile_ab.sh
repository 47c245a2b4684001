#!/bin/bash
# profile_ab.sh N RUN…: ingest_profile.py (N events of /tmp/pgm/300k.ndjson appended in process in
# batches of 20k, each statement timed) with base (/tmp/pg-base/src) or new code, in turn.
n=$1; shift
for run in "$@"; do
  if [ "${run%%-*}" = base ]; then src=/tmp/pg-base/src; else src=/work/wt-pg/src; fi
  echo "[$(date -u +%T)] $run load: $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$src /work/wt-pg/.venv/bin/python /work/wt-pg/bench/pg_point4/ingest_profile.py pgm_prof_${run/-/_} $n
done
