"""Experiment: ingest cost as the store grows, value-led term indexes against day-led ones.

    python -m bench.day_buckets build current 1000000    # fresh store at bench/work/exp-current.db
    python -m bench.day_buckets build bucket 1000000     # the same with day-led term indexes
    python -m bench.day_buckets grow current 001 002     # then more dataset parts into each; run
    python -m bench.day_buckets grow bucket 001 002      # the two side by side (one core each)

Prints events/s and bytes written to disk per event (``/proc/self/io``: WAL and checkpoints) for
every 200k events. The dataset is the 10M one (``python -m bench.run --events 10000000`` makes it).
Results of 2026-11-23 are in bench/results/experiments/ and discussed in docs/benchmarks.md.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from trailhouse.service.ingest import decode_ndjson, validate_items
from trailhouse.storage.sqlite import SqliteStore

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data" / "s7-n10000000-e20261123-h100000-f100000"
DAY = "event_time / 86400000"
VALUE_LED = {
    "events_user": "events (account, user_name, event_time) WHERE user_name IS NOT NULL",
    "events_access_key": "events (account, access_key, event_time) WHERE access_key IS NOT NULL",
    "events_source_ip": "events (account, source_ip, event_time) WHERE source_ip IS NOT NULL",
    "events_role": "events (account, role_name, event_time) WHERE role_name IS NOT NULL",
    "event_resources_name": "event_resources (account, rname, event_time, seq)",
    "event_resources_type": "event_resources (account, rtype, event_time, seq)",
}


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes"):
            return int(line.split()[1])
    return 0


def _ingest(store: SqliteStore, label: str, lines: itertools.islice | object) -> None:
    items = decode_ndjson(lines)  # type: ignore[arg-type]
    done, last, written = 0, time.perf_counter(), _written()
    while chunk := list(itertools.islice(items, 20_000)):
        records, _ = validate_items(chunk, may_write=lambda _a: True)
        store.append(records)
        done += len(chunk)
        if done % 200_000 == 0:
            now, w = time.perf_counter(), _written()
            print(
                f"{label} +{done} {200_000 / (now - last):.0f}/s {(w - written) / 200_000:.0f} B/event",
                flush=True,
            )
            last, written = now, w


def main(argv: list[str]) -> None:
    action, variant, *rest = argv
    path = BENCH / "work" / f"exp-{variant}.db"
    if action == "build":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        store = SqliteStore(path)
        if variant == "current":  # the indexes as they were before migration 0005
            for name, definition in VALUE_LED.items():
                store._writer.execute(f"DROP INDEX {name}")
                store._writer.execute(f"CREATE INDEX {name} ON {definition}")
        with (DATA / "part-000.ndjson").open("rb") as f:
            _ingest(store, variant, itertools.islice(f, int(rest[0])))
        store.close()
        size = sum(
            Path(f"{path}{suffix}").stat().st_size
            for suffix in ("", "-wal")
            if Path(f"{path}{suffix}").exists()
        )
        print(f"{variant} {size / int(rest[0]):.1f} bytes/event on disk", flush=True)
        return
    else:
        store = SqliteStore(path)
        for part in rest:
            with (DATA / f"part-{part}.ndjson").open("rb") as f:
                _ingest(store, variant, f)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
