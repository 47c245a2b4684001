"""As ingest_profile.py, into a schema that already holds a store (e.g. a loaded 1M one): the first N
events of FILE appended in batches of BATCH (1,000: an HTTP ingest request), each statement timed.

    python bench/pg_point4/append_profile.py SCHEMA FILE N BATCH [SKIP]
"""

import collections
import contextlib
import itertools
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from trailhouse.service.ingest import decode_ndjson, validate_items
from trailhouse.storage.postgres import PostgresStore

schema, path = sys.argv[1], sys.argv[2]
N, BATCH = int(sys.argv[3]), int(sys.argv[4])
SKIP = int(sys.argv[5]) if len(sys.argv) > 5 else 0  # events of FILE skipped first
DB = "postgresql://postgres@127.0.0.1:5432/trailhouse_bench"
store = PostgresStore(f"{DB}?options=-csearch_path%3D{schema}")
spent: collections.Counter[str] = collections.Counter()
orig_execute = psycopg.Connection.execute
orig_cursor_copy = psycopg.Cursor.copy


def timed_execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
    t = time.perf_counter()
    try:
        return orig_execute(self, query, params, **kw)
    finally:
        spent[" ".join(str(query).split()[:3])[:40]] += time.perf_counter() - t


@contextlib.contextmanager
def timed_cursor_copy(self: Any, statement: Any, *a: Any, **kw: Any) -> Iterator[Any]:
    t = time.perf_counter()
    with orig_cursor_copy(self, statement, *a, **kw) as cp:
        yield cp
    spent[" ".join(str(statement).split()[:2])[:40]] += time.perf_counter() - t


def timed(name: str, fn: Any) -> Any:
    def run(*a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            spent[name] += time.perf_counter() - t

    return run


psycopg.Connection.execute = timed_execute  # type: ignore[method-assign]
psycopg.Cursor.copy = timed_cursor_copy  # type: ignore[method-assign,assignment]
store._copy_rows = timed("_copy_rows (COPY events, resources)", store._copy_rows)  # type: ignore[method-assign]
store._intern = timed("_intern", store._intern)  # type: ignore[method-assign]
with open(path, "rb") as f:
    items = list(decode_ndjson(itertools.islice(f, SKIP, SKIP + N)))
records, rejected, _ = validate_items(items, may_write=lambda a: True)
total = 0.0
for i in range(0, len(records), BATCH):
    t = time.perf_counter()
    store.append(records[i : i + BATCH])
    total += time.perf_counter() - t
print(f"{len(records)} events, append total {total:.1f} s = {len(records) / total:,.0f} events/s")
for k, v in spent.most_common(12):
    print(f"  {v:7.2f} s  {100 * v / total:5.1f} %  {k}")
store.close()
