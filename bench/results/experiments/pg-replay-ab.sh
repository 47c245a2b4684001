#!/usr/bin/env bash
# PostgreSQL lookups: every request in a thread (A, /tmp/base = 3f5ce4c) against answers replayed on
# the event loop (B, /tmp/new = the replay commit), alternating, on the 1M store kept by
#   python -m bench.run --events 1000000 --backends postgres --keep --end-date 2026-12-06 \
#     --out bench/results/experiments/pg-async-base-1m.json
# /tmp/X holds `git archive <commit> src | tar -x -C /tmp/X`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
for round in 1 2 3; do
  for v in base new; do
    PYTHONPATH=/tmp/$v/src .venv/bin/python -m bench.queries bench/results/experiments/pg-async-base-1m.json \
      --backend postgres --out "bench/results/experiments/pg-replay-ab-$v$round.json"
  done
done
