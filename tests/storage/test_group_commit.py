"""SQLite group commit: concurrent batches share transactions, yet each caller gets its own truth."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from trailhouse.model.event import EventRecord, event_from_mapping
from trailhouse.model.query import EventFilter
from trailhouse.storage.base import AppendResult
from trailhouse.storage.sqlite import SqliteStore


def rec(i: int) -> EventRecord:
    return event_from_mapping(
        {
            "eventId": f"g{i}",
            "eventTime": "2026-11-20T10:00:00Z",
            "eventName": "X",
            "sourceIpAddress": f"10.0.{i % 7}.1",
            "userIdentity": {"accountId": "9", "accessKeyId": "LTAIg"},
        }
    )


def run_threads(store: SqliteStore, batches: list[list[EventRecord]]) -> list[AppendResult | BaseException]:
    results: list[AppendResult | BaseException] = [AppendResult([], [])] * len(batches)
    barrier = threading.Barrier(len(batches))

    def work(n: int) -> None:
        barrier.wait()
        try:
            results[n] = store.append(batches[n])
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_overlapping_concurrent_batches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    try:
        batches = [[rec(i) for i in range(n * 50, n * 50 + 100)] for n in range(8)]  # each overlaps the next
        results = run_threads(store, batches)
        accepted = 0
        for batch, result in zip(batches, results, strict=True):
            assert isinstance(result, AppendResult)
            assert sorted(result.accepted + result.duplicates) == list(range(len(batch)))
            accepted += len(result.accepted)
        stored = store.find_events(
            account_id="9", flt=EventFilter(0, 2**62), after=None, descending=False, limit=10_000
        )
        assert accepted == len(stored) == len({e.event_id for e in stored}) == 450
    finally:
        store.close()


def test_a_failing_batch_fails_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    try:
        broken = dataclasses.replace(rec(10_000), body=None)  # type: ignore[arg-type]
        batches = [[rec(i) for i in range(n * 10, n * 10 + 10)] for n in range(5)] + [[broken]]
        results = run_threads(store, batches)
        assert isinstance(results[-1], Exception)
        assert all(isinstance(r, AppendResult) and len(r.accepted) == 10 for r in results[:-1])
    finally:
        store.close()


def test_closed_store_refuses(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.append([rec(1)])


def test_sqlite_memory_is_bounded_by_its_caches(tmp_path: Path) -> None:
    """What a SQLite store may hold in memory is its caches: the writer's (the setting), at most
    32 MiB per reading thread, and no mapping of the file, whose pages would count in RSS."""
    from trailhouse.storage.sqlite import READER_CACHE_MIB

    store = SqliteStore(tmp_path / "m.db", cache_mib=96)
    try:
        store.append([rec(1)])
        readers: list[tuple[int, int]] = []

        def read() -> None:
            conn = store._reader()
            pragmas = [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "mmap_size")]
            readers.append((pragmas[0], pragmas[1]))

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        writer = store._writer
        assert writer.execute("PRAGMA cache_size").fetchone()[0] == -96 * 1024
        assert writer.execute("PRAGMA mmap_size").fetchone()[0] == 0
        assert readers == [(-READER_CACHE_MIB * 1024, 0)]
    finally:
        store.close()
