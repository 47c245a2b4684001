#!/bin/bash
# append_ab.sh RUN…: append_profile.py of 20k events of the HTTP slice in batches of 1,000 (an HTTP
# ingest request's size) into the kept 1M+ stores, base code into pgm_ab_base_2, new into
# pgm_ab_new_2; run k takes the slice's k-th 20k, so no run repeats another's events.
H=/work/main/bench/data/s7-n1000000-e20261207-h100000-f100000/slice-http.ndjson
k=1
for run in "$@"; do
  if [ "${run%%-*}" = base ]; then src=/tmp/pg-base/src; schema=pgm_ab_base_2; else src=/work/wt-pg/src; schema=pgm_ab_new_2; fi
  echo "[$(date -u +%T)] $run load: $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$src /work/wt-pg/.venv/bin/python /work/wt-pg/bench/pg_point4/append_profile.py $schema $H 20000 1000 $((k * 20000)) | head -8
  k=$((k + 1))
done
