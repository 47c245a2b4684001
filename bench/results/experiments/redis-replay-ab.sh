#!/usr/bin/env bash
# Lookups with Redis limits (`serve --redis`): admitting in a thread (A, /tmp/base2 = 2f1ae9c, where
# Redis sent every request to a thread) against admitting replayed on the event loop (B, /tmp/new2
# = c189016), alternating, on the 1M PostgreSQL store kept by
#   python -m bench.run --events 1000000 --backends postgres --keep --end-date 2026-12-06 \
#     --out bench/results/experiments/redis-replay-base-1m.json
# and the same on SQLite (--backends sqlite, redis-replay-base-1m-sqlite.json).
# /tmp/X holds `git archive <commit> src | tar -x -C /tmp/X`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
for round in 1 2; do
  for v in base2 new2; do
    PYTHONPATH=/tmp/$v/src .venv/bin/python -m bench.queries bench/results/experiments/redis-replay-base-1m.json \
      --backend postgres --label "redis-$v-$round" --out "bench/results/experiments/redis-replay-ab-pg-$v-$round.json" \
      -- --redis redis://127.0.0.1:6379/0
  done
done
# SQLite with Redis limits, one pair (store kept by the same bench.run with --backends sqlite):
for v in base2 new2; do
  PYTHONPATH=/tmp/$v/src .venv/bin/python -m bench.queries bench/results/experiments/redis-replay-base-1m-sqlite.json \
    --backend sqlite --label "redis-$v" --out "bench/results/experiments/redis-replay-ab-sqlite-$v.json" \
    -- --redis redis://127.0.0.1:6379/0
done
