"""Which B-trees an ingest commit writes: the WAL frames of each batch, by table and index.

    python -m bench.commit_pages STORE.db SLICE.ndjson [--batches 30] [--batch 1000]

A copy of the SQLite store takes ``--batches`` batches of the slice (decoded and validated as
ingest does, one commit each, as HTTP ingest's batches of 1,000); before each the WAL is
checkpointed and emptied, after it the WAL's pages are noted; each is then named by the ``dbstat``
B-tree that holds it after the run ("free" for a freelist page). Prints the events/s of the
appends (decode excluded) and the pages per batch.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import shutil
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

from bench.batch_layout import _batches
from trailhouse.storage.sqlite import SqliteStore


def wal_pages(wal: Path) -> set[int]:
    """The page numbers of every frame in a WAL file (https://sqlite.org/fileformat.html#the_write_ahead_log)."""
    data = wal.read_bytes()
    if len(data) < 32:
        return set()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = set(), 32
    while offset + 24 <= len(data):
        pages.add(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += 24 + page_size
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", type=Path)
    parser.add_argument("slice", type=Path)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.store.parent) as work:
        db = Path(work) / "copy.db"
        shutil.copy(args.store, db)
        try:
            store = SqliteStore(db, merge_keys_at=1 << 40)  # no merge inside the measured commits
        except TypeError:  # a store from before sqlite/0018 (an A/B against older code)
            store = SqliteStore(db)
        writer = store._writer
        writer.execute("PRAGMA wal_autocheckpoint=0")
        written: list[set[int]] = []
        seconds, events = 0.0, 0
        for batch in itertools.islice(_batches(str(args.slice), args.batch), args.batches):
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            started = time.perf_counter()
            store.append(batch)
            seconds += time.perf_counter() - started
            events += len(batch)
            written.append(wal_pages(Path(f"{db}-wal")))
        store.close()
        with sqlite3.connect(db) as conn:
            owner = dict((page, name) for name, page in conn.execute("SELECT name, pageno FROM dbstat"))
        pages = collections.Counter(owner.get(page, "free") for batch in written for page in batch)
    n = args.batches
    print(
        f"{events} events, {events / seconds:,.0f} events/s, {sum(pages.values()) / n:,.0f} pages per commit"
    )
    for name, count in pages.most_common():
        print(f"  {name:32s} {count / n:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
