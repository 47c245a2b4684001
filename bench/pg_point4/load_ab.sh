#!/bin/bash
# load_ab.sh RUN…: for each RUN (base-N or new-N), a fresh schema pgm_ab_RUN loaded by load.sh with the
# 1M dataset then its file slice; base = the export of the code before (/tmp/pg-base/src).
D=/work/main/bench/data/s7-n1000000-e20261207-h100000-f100000
for run in "$@"; do
  if [ "${run%%-*}" = base ]; then src=/tmp/pg-base/src; else src=/work/wt-pg/src; fi
  psql -q -h 127.0.0.1 -U postgres -d trailhouse_bench -c "DROP SCHEMA IF EXISTS pgm_ab_${run/-/_} CASCADE"
  /work/wt-pg/bench/pg_point4/load.sh $run $src pgm_ab_${run/-/_} $D/part-000.ndjson $D/slice-file.ndjson
done
