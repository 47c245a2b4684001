"""Steady ingest rate into a SQLite store already holding N events.

Used to measure the eventId index spanning every day (migration 0006) against the day-bucketed one
it replaced: run it once on this tree and once with PYTHONPATH pointing at a checkout of a5056ba.

    python -m bench.event_id_index /tmp/new.db 1000000 100000 global
"""

import os
import sys
import time

import orjson

from trailhouse.demo.generate import generate_events
from trailhouse.model.event_text import event_from_json
from trailhouse.storage.sqlite import SqliteStore

N = int(sys.argv[2])
STEADY = int(sys.argv[3])
path = sys.argv[1]
end = 1_795_000_000_000
if os.path.exists(path):
    os.remove(path)
store = SqliteStore(path)


def batches(events, size=20000):
    buf = []
    for e in events:
        buf.append(event_from_json(orjson.dumps(e)))
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


for b in batches(generate_events(seed=7, count=N, end_ms=end - 86_400_000, days=90)):
    store.append(b)
steady = list(batches(generate_events(seed=8, count=STEADY, end_ms=end, days=1), 1000))
t = time.perf_counter()
for b in steady:
    store.append(b)
dt = time.perf_counter() - t
print(
    f"{sys.argv[4]}: store {N} + steady {STEADY} in batches of 1000: {STEADY / dt:,.0f} events/s", flush=True
)
store.close()
