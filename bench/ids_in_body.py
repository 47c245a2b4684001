"""The eventId and requestId texts out of the event row (SQLite 0017, PostgreSQL 0016), measured.

One run, in process, on the code on ``PYTHONPATH`` (old and new alternate; see docs/benchmarks.md,
"The eventId and requestId out of the event row"):

1. ``--events`` generated events (seed 7, 30 days, decoded before any timing) appended in batches
   of 1,000 into a fresh store: events/s and the process's CPU per event;
2. the last 100,000 of them sent again, all duplicates, batches of 1,000: events/s (each hash hit
   is now checked against the stored body instead of a column);
3. 2,000 LookupEvents by EventId and 2,000 by RequestId of stored events (their day, page of 20):
   p50/p99 ms of the store call;
4. bytes per event of ``events`` (SQLite: ``dbstat``; PostgreSQL: every partition, its indexes and
   TOAST) and of the whole store.

    python -m bench.ids_in_body --db sqlite:////tmp/ids/new.db --label new
    PYTHONPATH=/tmp/old/src python -m bench.ids_in_body \
        --db "postgresql://postgres@127.0.0.1/test?options=-csearch_path%3Dids_old" --label old
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from trailhouse.demo.generate import generate_events
from trailhouse.model.event_text import event_from_json
from trailhouse.model.query import Attr, EventFilter
from trailhouse.storage import open_store

DAY_MS = 86_400_000
END_MS = 1_795_000_000_000
RESENT = 100_000
BATCH = 1_000


def _fresh(url: str) -> None:
    """An empty store at ``url``: the SQLite file removed, or the PostgreSQL schema made anew."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    import psycopg

    options = parse_qs(urlsplit(url).query).get("options", [""])[0]
    schema = options.split("search_path=", 1)[1]
    base = url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")


def _bytes(store: Any, url: str, events: int) -> dict[str, float]:
    with store._guard():
        if url.startswith("sqlite"):
            store._read("PRAGMA wal_checkpoint(TRUNCATE)")
            (table,) = store._read("SELECT sum(pgsize) FROM dbstat WHERE name = 'events'")[0]
            (total,) = store._read(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            )[0]
        else:
            (table,) = store._read(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                " WHERE inhparent = 'events'::regclass"
            )[0]
            (total,) = store._read(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
            )[0]
    return {"events_table": round(int(table) / events, 1), "store": round(int(total) / events, 1)}


def _quantiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"p50": round(q[49], 3), "p99": round(q[98], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    records = [
        event_from_json(orjson.dumps(e))
        for e in generate_events(seed=7, count=args.events, end_ms=END_MS, days=30)
    ]
    _fresh(args.db)
    store: Any = open_store(args.db, create=True)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(records), BATCH):
            store.append(records[i : i + BATCH])
        load_s, load_cpu = time.perf_counter() - started, time.process_time() - cpu

        again = records[-RESENT:]
        started = time.perf_counter()
        duplicates = 0
        for i in range(0, len(again), BATCH):
            duplicates += len(store.append(again[i : i + BATCH]).duplicates)
        resend_s = time.perf_counter() - started
        assert duplicates == len(again), duplicates

        rng = random.Random(11)
        picked = rng.sample(records, 2000)
        lookups: dict[str, dict[str, float]] = {}
        for name, attr, value_of in (
            ("EventId", Attr.EVENT_ID, lambda r: r.event_id),
            ("RequestId", Attr.REQUEST_ID, lambda r: r.request_id),
        ):
            ms: list[float] = []
            for rec in picked:
                if value_of(rec) is None:
                    continue
                day = rec.event_time_ms - rec.event_time_ms % DAY_MS
                flt = EventFilter(day, day + DAY_MS - 1, equals={attr: (value_of(rec),)})
                t = time.perf_counter()
                page = store.find_events(
                    account_id=rec.account_id, flt=flt, after=None, descending=True, limit=20
                )
                ms.append((time.perf_counter() - t) * 1000)
                assert any(e.seq for e in page), (name, value_of(rec))
            lookups[name] = _quantiles(ms)
        result = {
            "label": args.label,
            "db": args.db.split("://", 1)[0],
            "events": len(records),
            "append_events_per_s": round(len(records) / load_s),
            "append_cpu_us_per_event": round(load_cpu / len(records) * 1e6, 1),
            "resent_events_per_s": round(len(again) / resend_s),
            "lookups_ms": lookups,
            "bytes_per_event": _bytes(store, args.db, len(records)),
            "load_average": os.getloadavg(),
        }
    finally:
        store.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
