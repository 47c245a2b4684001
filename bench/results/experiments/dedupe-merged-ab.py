"""A/B of one ingest: copy a store, then append an NDJSON file to the copy in batches of 1,000, in
process (decode and validation included), with whatever ``trailhouse`` PYTHONPATH gives; prints
events/s and the disk bytes written per event.

    PYTHONPATH=<src>:. python bench/results/experiments/dedupe-merged-ab.py STORE.db EVENTS.ndjson LABEL
"""

import shutil
import sys
from pathlib import Path

from bench.batch_layout import _ingest

from trailhouse.storage.sqlite import SqliteStore

source, events, label = sys.argv[1:4]
copy = Path(source).with_name("ab-copy.db")
for suffix in ("", "-wal", "-shm"):
    Path(f"{copy}{suffix}").unlink(missing_ok=True)
shutil.copy(source, copy)
store = SqliteStore(copy)
print(label, _ingest(store.append, events, 1000), flush=True)
store.close()
