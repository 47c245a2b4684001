"""SQLite's eventId dedupe merged in bulk (migration sqlite/0018, storage.sqlite_keys).

The contract suite runs with merges every few events (tests/storage/conftest.py); these tests pin
the tables themselves, other processes writing the same file, a merge that fails, a store from
before 0018, and a writer killed while ingesting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trailhouse.model.event import key_hash
from trailhouse.model.query import Attr, EventFilter
from trailhouse.storage.sql.find import event_key_slice
from trailhouse.storage.sqlite import SqliteStore

from .conftest import ACCOUNT, at, record

WHOLE_YEAR = EventFilter(start_ms=0, end_ms=1 << 45)


def _connect(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def _tables(path: Path) -> tuple[int, int, dict[int, int]]:
    """(rows of event_keys, rows of event_keys_recent, {slice: merged_seq} of the merged slices)."""
    with _connect(path) as conn:
        merged = conn.execute("SELECT count(*) FROM event_keys").fetchone()[0]
        recent = conn.execute("SELECT count(*) FROM event_keys_recent").fetchone()[0]
        seqs = dict(conn.execute("SELECT slice, merged_seq FROM event_keys_state WHERE merged_seq > 0"))
    return merged, recent, seqs


def _ids(slice_: int, n: int, prefix: str = "e") -> list[str]:
    """``n`` eventIds whose hashes fall in one slice, so a merge moves them together."""
    ids = (f"{prefix}{i}" for i in range(100_000))
    return [i for i in ids if event_key_slice(key_hash(i)) == slice_][:n]


def _found(store: SqliteStore, event_id: str) -> list[str]:
    flt = EventFilter(start_ms=0, end_ms=1 << 45, equals={Attr.EVENT_ID: frozenset({event_id})})
    return [
        e.event_id
        for e in store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=5)
    ]


def test_recent_keys_move_to_event_keys_in_one_merge_and_dedupe_on_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    e = _ids(3, 6)
    store = SqliteStore(path, merge_keys_at=4)
    assert store.append([record(e[i], f"10:00:0{i}") for i in range(3)]).accepted == [0, 1, 2]
    assert _tables(path) == (0, 3, {})
    assert store.append([record(e[3], "10:00:03"), record(e[4], "10:00:04")]).accepted == [0, 1]
    assert _tables(path) == (5, 0, {3: 5})  # one merge took the five of slice 3
    assert store.append([record(e[5], "10:00:05")]).accepted == [0]
    assert _tables(path) == (5, 1, {3: 5})
    # Re-sent with other times (another day too): found merged or recent alike.
    again = [record(i, "2026-10-09T08:00:00Z") for i in e]
    assert store.append(again).duplicates == list(range(6))
    for i in e:
        assert _found(store, i) == [i]
    assert _found(store, "e-none") == []
    store.close()


def test_a_merge_moves_the_fullest_slice_only(tmp_path: Path) -> None:
    path = tmp_path / "slices.db"
    ones, twos = _ids(1, 3), _ids(2, 3)
    store = SqliteStore(path, merge_keys_at=5)
    store.append([record(i) for i in [*ones, *twos[:2]]])
    assert _tables(path) == (3, 2, {1: 5})
    store.append([record(twos[2])])
    assert _tables(path) == (3, 3, {1: 5})
    # Slice 2 was never merged (its recent keys are probed from seq 1), slice 1 was at seq 5.
    for i in [*ones, *twos]:
        assert _found(store, i) == [i]
    assert store.append([record(i, "11:00:00") for i in [*ones, *twos]]).duplicates == list(range(6))
    store.close()


def test_keys_over_several_generations_and_slices_merged_at_different_seqs_are_all_found(
    tmp_path: Path,
) -> None:
    path = tmp_path / "generations.db"
    store = SqliteStore(path, merge_keys_at=3000)
    ids = [f"g{i}" for i in range(10_000)]  # seqs over three generations of 4,096
    for start in range(0, len(ids), 1000):
        store.append([record(i, f"10:{start // 1000:02d}:00") for i in ids[start : start + 1000]])
    merged, recent, seqs = _tables(path)
    assert merged + recent == len(ids)
    assert len(set(seqs.values())) > 2  # slices merged at different points of the log
    for i in ids[::37]:
        assert _found(store, i) == [i]
    assert len(store.append([record(i, "2026-10-08T00:00:00Z") for i in ids]).duplicates) == len(ids)
    store.close()


def test_a_writer_catches_up_with_another_process_s_keys_across_generations(tmp_path: Path) -> None:
    path = tmp_path / "catch-up.db"
    a = SqliteStore(path, merge_keys_at=1 << 20)
    b = SqliteStore(path, merge_keys_at=1 << 20)
    assert b.append([record("first")]).accepted == [0]  # b's copy now holds seq 1
    ids = [f"a{i}" for i in range(6000)]  # seqs 2..6001: generations 0 and 1
    for start in range(0, len(ids), 1000):
        a.append([record(i) for i in ids[start : start + 1000]])
    again = b.append([record(i, "2026-10-08T00:00:00Z") for i in ["first", *ids]])
    assert again.duplicates == list(range(len(ids) + 1))
    a.close()
    b.close()


def test_two_writers_on_one_file_see_each_others_keys_and_merges(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    e = _ids(7, 8)
    a = SqliteStore(path, merge_keys_at=4)
    b = SqliteStore(path, merge_keys_at=1000)
    assert a.append([record(e[1]), record(e[2])]).accepted == [0, 1]
    assert b.append([record(e[1], "11:00:00")]).duplicates == [0]  # b read a's recent keys
    assert b.append([record(e[3]), record(e[4]), record(e[5])]).accepted == [0, 1, 2]
    assert a.append([record(e[3], "12:00:00")]).duplicates == [0]  # a caught up with b's batch
    assert _tables(path) == (5, 0, {7: 5})  # and, knowing five recent keys, merged them
    assert a.append([record(e[6])]).accepted == [0]
    assert _tables(path) == (5, 1, {7: 5})
    assert b.append([record(e[2], "13:00:00"), record(e[6], "13:00:00")]).duplicates == [0, 1]
    assert b.append([record(e[7])]).accepted == [0]
    assert a.append([record(e[7], "14:00:00")]).duplicates == [0]
    stored = sorted(x.event_id for x in a.iter_events(account_id=ACCOUNT, flt=WHOLE_YEAR, descending=False))
    assert stored == sorted(e[1:])
    a.close()
    b.close()


def test_a_failed_merge_loses_nothing_and_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "failing.db"
    e = _ids(5, 5)
    store = SqliteStore(path, merge_keys_at=3)
    with _connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER no_merge BEFORE INSERT ON event_keys BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with caplog.at_level(logging.WARNING, logger="trailhouse.storage"):
        assert store.append([record(i) for i in e[:4]]).accepted == [0, 1, 2, 3]
    assert "merging the recent eventId keys failed" in caplog.text
    assert _tables(path) == (0, 4, {})
    assert store.append([record(e[2], "2026-10-07T00:00:00Z")]).duplicates == [0]
    assert _found(store, e[3]) == [e[3]]
    with _connect(path) as conn:
        conn.execute("DROP TRIGGER no_merge")
    assert store.append([record(e[4])]).accepted == [0]
    assert _tables(path) == (5, 0, {5: 5})
    assert store.append([record(i, "15:00:00") for i in e]).duplicates == list(range(5))
    store.close()


def test_a_store_from_before_0018_moves_its_keys_and_keeps_deduping(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.append([record(f"e{i}", f"10:00:0{i}") for i in range(4)])
    store.close()
    with _connect(path) as conn:
        for table in ("event_keys", "event_keys_recent", "event_keys_state"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("CREATE INDEX events_key ON events (account, event_key)")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0018_event_keys_merged_in_bulk'")
    store = SqliteStore(path)
    assert _tables(path) == (4, 0, dict.fromkeys(range(16), 4))
    with _connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'events_key'").fetchall() == []
    assert store.append([record("e1", "2026-10-08T10:00:00Z"), record("e9")]).duplicates == [0]
    assert _found(store, "e2") == ["e2"]
    store.close()


def test_a_requestid_lookup_reads_both_indexes_then_rows_by_seq(tmp_path: Path) -> None:
    """A requestId that is its event's eventId has no entry of its own (storage.units): the lookup
    takes seqs from the requestId index, day by day, and from the eventId keys, then rows by seq."""
    store = SqliteStore(tmp_path / "plan.db")
    store.append([record("e1", requestId="e1"), record("e2", requestId="r2")])
    with _connect(tmp_path / "plan.db") as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE request_key IS NOT NULL").fetchone() == (1,)
    flt = EventFilter(
        start_ms=at("00:00:00"), end_ms=at("23:59:59"), equals={Attr.REQUEST_ID: frozenset({"e1"})}
    )
    plan = " | ".join(store.explain_find(account_id=ACCOUNT, flt=flt))
    assert "SEARCH e USING INTEGER PRIMARY KEY" in plan
    assert "USING INDEX events_request (account=? AND <expr>=? AND request_key=?)" in plan
    assert "SEARCH event_keys USING PRIMARY KEY (account=? AND event_key=?)" in plan
    assert "SCAN e " not in plan + " "
    found = store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=10)
    assert [e.seq for e in found] == [1]
    store.close()


def test_an_eventid_lookup_reads_rows_by_seq(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plan.db")
    store.append([record("e1")])
    flt = EventFilter(start_ms=0, end_ms=1 << 45, equals={Attr.EVENT_ID: frozenset({"e1"})})
    plan = " | ".join(store.explain_find(account_id=ACCOUNT, flt=flt))
    assert "SEARCH e USING INTEGER PRIMARY KEY" in plan
    assert "SEARCH event_keys USING PRIMARY KEY (account=? AND event_key=?)" in plan
    assert (
        "SEARCH event_keys_recent USING PRIMARY KEY (slice=? AND gen=? AND account=? AND event_key=?)" in plan
    )
    assert "SCAN e " not in plan + " "
    store.close()


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = {paths!r}
    from tests.storage.conftest import record
    from trailhouse.storage.sqlite import SqliteStore

    store = SqliteStore({db!r}, merge_keys_at=7)
    for n in range(10_000):
        store.append([record(f"e{{n * 3 + i}}", f"10:{{n % 60:02d}}:0{{i}}") for i in range(3)])
        print(n, flush=True)
    """
)


def test_a_writer_killed_while_ingesting_and_merging_keeps_each_event_once(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    root = Path(__file__).resolve().parents[2]
    script = _WRITER.format(paths=[str(root), str(root / "src")], db=str(db))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= 40:  # several merges (every 7 keys) behind it
            break
    assert acknowledged >= 40, "the writer stopped before it had written much"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    store = SqliteStore(db, merge_keys_at=7)
    stored = [e.event_id for e in store.iter_events(account_id=ACCOUNT, flt=WHOLE_YEAR, descending=False)]
    assert len(stored) == len(set(stored))
    sent = [f"e{n}" for n in range(len(stored) + 3)]
    assert set(stored) >= set(sent[: (acknowledged + 1) * 3])  # every acknowledged batch survived
    result = store.append([record(e, "2026-10-06T09:00:00Z") for e in sent])
    assert len(result.duplicates) == len(stored)
    assert sorted(
        e.event_id for e in store.iter_events(account_id=ACCOUNT, flt=WHOLE_YEAR, descending=False)
    ) == (sorted(sent))
    merged, recent, _ = _tables(db)
    assert merged + recent == len(sent)
    store.close()
