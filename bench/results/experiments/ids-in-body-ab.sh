#!/bin/bash
cd /work/main
PG="postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D"
for spec in "sqlite old 1" "sqlite new 1" "sqlite old 2" "sqlite new 2" "pg old 1" "pg new 1" "pg old 2" "pg new 2"; do
  set -- $spec
  if [ $1 = sqlite ]; then db="sqlite:////tmp/idsab/$2$3.db"; else db="${PG}ids_$2$3"; fi
  PYTHONPATH=/tmp/idsab/$2/src .venv/bin/python -m bench.ids_in_body --db "$db" --label "$1-$2-$3" --events 200000
done
