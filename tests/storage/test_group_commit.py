"""Group commit (storage.group_commit), on both backends: concurrent batches share transactions,
yet each caller gets its own truth, its own failure and its own time budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import pytest

from trailhouse.model.event import EventRecord
from trailhouse.model.query import EventFilter
from trailhouse.storage.base import AppendResult, EventStore
from trailhouse.storage.budget import query_budget
from trailhouse.storage.sqlite import SqliteStore
from trailhouse.storage.units import WriteUnit, build_unit

from .conftest import ACCOUNT, Backend, record


def rec(i: int) -> EventRecord:
    return record(f"g{i}", "10:00:00", sourceIpAddress=f"10.0.{i % 7}.1")


Outcome = AppendResult | BaseException


def hold_first_transaction(store: EventStore, queued: int) -> list[int]:
    """Make the store's first transaction wait until ``queued`` more batches wait behind it, so the
    next transaction groups them all; returns the events each transaction was handed."""
    group = store._group  # type: ignore[attr-defined]
    write: Callable[[Sequence[WriteUnit]], AppendResult] = group._write
    sizes: list[int] = []

    def held(units: Sequence[WriteUnit]) -> AppendResult:
        if not sizes:
            deadline = time.monotonic() + 10
            while len(group._pending) < queued:
                assert time.monotonic() < deadline, "the other batches never queued"
                time.sleep(0.005)
        sizes.append(sum(u.size for u in units))
        return write(units)

    group._write = held
    return sizes


def run_threads(work: list[Callable[[], AppendResult]]) -> list[Outcome]:
    """Each callable in a thread of its own, the first started before the others."""
    results: list[Outcome] = [AppendResult([], [])] * len(work)

    def run(n: int) -> None:
        try:
            results[n] = work[n]()
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    threads[0].start()
    time.sleep(0.05)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(30)
    return results


def stored_ids(store: EventStore) -> list[str]:
    found = store.find_events(
        account_id=ACCOUNT, flt=EventFilter(0, 2**62), after=None, descending=False, limit=10_000
    )
    return [e.event_id for e in found]


def test_overlapping_concurrent_batches_share_a_transaction(store: EventStore) -> None:
    batches = [[rec(i) for i in range(n * 50, n * 50 + 100)] for n in range(8)]  # each overlaps the next
    sizes = hold_first_transaction(store, queued=7)
    results = run_threads([lambda b=b: store.append(b) for b in batches])  # type: ignore[misc]
    assert sizes == [100, 700]  # the first alone, the seven that queued behind it together
    accepted = 0
    for n, (batch, result) in enumerate(zip(batches, results, strict=True)):
        assert isinstance(result, AppendResult), result
        assert sorted(result.accepted + result.duplicates) == list(range(len(batch)))
        if n == 0:
            assert len(result.accepted) == 100
        accepted += len(result.accepted)
    ids = stored_ids(store)
    assert accepted == len(ids) == len(set(ids)) == 450
    # Every eventId is reported accepted by exactly one caller.
    owners = [batch[i].event_id for batch, r in zip(batches, results, strict=True) for i in r.accepted]  # type: ignore[union-attr]
    assert sorted(owners) == sorted(ids)


def test_a_failing_batch_fails_alone(store: EventStore) -> None:
    good = [[rec(i) for i in range(n * 10, n * 10 + 10)] for n in range(5)]
    # A unit whose columns disagree: the store's transaction fails on it, inside the shared one.
    broken = msgspec.structs.replace(build_unit([rec(10_000), rec(10_001)]), leaf=[])
    sizes = hold_first_transaction(store, queued=5)
    work: list[Callable[[], AppendResult]] = [lambda b=b: store.append(b) for b in good]  # type: ignore[misc]
    work.append(lambda: store.append_units([broken]))
    results = run_threads(work)
    assert isinstance(results[-1], Exception)
    assert all(isinstance(r, AppendResult) and len(r.accepted) == 10 for r in results[:-1]), results
    assert sizes[:2] == [10, 42]  # the group of the four good batches and the broken one failed...
    assert sorted(sizes[2:]) == [2, 10, 10, 10, 10]  # ...and each was retried alone
    assert len(stored_ids(store)) == 50


def test_a_caller_out_of_time_does_not_fail_the_group(store: EventStore) -> None:
    """A shared transaction runs under the longest budget of its callers, not its leader's."""
    sizes = hold_first_transaction(store, queued=2)

    def out_of_time() -> AppendResult:
        with query_budget(0.001):
            time.sleep(0.01)
            return store.append([rec(2)])

    def patient() -> AppendResult:
        with query_budget(30):
            return store.append([rec(3)])

    results = run_threads([lambda: store.append([rec(1)]), out_of_time, patient])
    assert sizes == [1, 2]
    assert [r.accepted for r in results] == [[0], [0], [0]]  # type: ignore[union-attr]
    assert sorted(stored_ids(store)) == ["g1", "g2", "g3"]


def test_closed_store_refuses(backend: Backend) -> None:
    store = backend.open()
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
