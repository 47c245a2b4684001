"""SQLite's eventId dedupe merged in bulk (migration sqlite/0018, storage.sqlite_keys).

The contract suite runs with merges every few events (tests/storage/conftest.py); these tests pin
the tables themselves, other processes writing the same file, a merge that fails, a store from
before 0018, and a writer killed while ingesting.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trailhouse.model.query import Attr, EventFilter
from trailhouse.storage.sqlite import SqliteStore

from .conftest import ACCOUNT, record

WHOLE_YEAR = EventFilter(start_ms=0, end_ms=1 << 45)


def _tables(path: Path) -> tuple[int, int, int]:
    """(rows of event_keys, rows of event_keys_recent, merged_seq)."""
    with sqlite3.connect(path) as conn:
        merged = conn.execute("SELECT count(*) FROM event_keys").fetchone()[0]
        recent = conn.execute("SELECT count(*) FROM event_keys_recent").fetchone()[0]
        (seq,) = conn.execute("SELECT merged_seq FROM event_keys_state").fetchone()
    return merged, recent, seq


def _found(store: SqliteStore, event_id: str) -> list[str]:
    flt = EventFilter(start_ms=0, end_ms=1 << 45, equals={Attr.EVENT_ID: frozenset({event_id})})
    return [
        e.event_id
        for e in store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=5)
    ]


def test_recent_keys_move_to_event_keys_in_one_merge_and_dedupe_on_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    store = SqliteStore(path, merge_keys_at=4)
    assert store.append([record(f"e{i}", f"10:00:0{i}") for i in range(3)]).accepted == [0, 1, 2]
    assert _tables(path) == (0, 3, 0)
    assert store.append([record("e3", "10:00:03"), record("e4", "10:00:04")]).accepted == [0, 1]
    assert _tables(path) == (5, 0, 5)  # one merge took all five
    assert store.append([record("e5", "10:00:05")]).accepted == [0]
    assert _tables(path) == (5, 1, 5)
    # Re-sent with other times (another day too): found merged or recent alike.
    again = [record(f"e{i}", "2026-10-09T08:00:00Z") for i in range(6)]
    assert store.append(again).duplicates == list(range(6))
    for i in range(6):
        assert _found(store, f"e{i}") == [f"e{i}"]
    assert _found(store, "e9") == []
    store.close()


def test_two_writers_on_one_file_see_each_others_keys_and_merges(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    a = SqliteStore(path, merge_keys_at=4)
    b = SqliteStore(path, merge_keys_at=1000)
    assert a.append([record("e1"), record("e2")]).accepted == [0, 1]
    assert b.append([record("e1", "11:00:00")]).duplicates == [0]  # b read a's recent keys
    assert b.append([record("e3"), record("e4"), record("e5")]).accepted == [0, 1, 2]
    assert a.append([record("e3", "12:00:00")]).duplicates == [0]  # a caught up with b's batch
    assert _tables(path) == (5, 0, 5)  # and, knowing five recent keys, merged them
    assert a.append([record("e6")]).accepted == [0]
    assert _tables(path) == (5, 1, 5)
    assert b.append([record("e2", "13:00:00"), record("e6", "13:00:00")]).duplicates == [0, 1]
    assert b.append([record("e7")]).accepted == [0]
    assert a.append([record("e7", "14:00:00")]).duplicates == [0]
    assert sorted(
        e.event_id for e in a.iter_events(account_id=ACCOUNT, flt=WHOLE_YEAR, descending=False)
    ) == [f"e{i}" for i in range(1, 8)]
    a.close()
    b.close()


def test_a_failed_merge_loses_nothing_and_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "failing.db"
    store = SqliteStore(path, merge_keys_at=3)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER no_merge BEFORE INSERT ON event_keys BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with caplog.at_level(logging.WARNING, logger="trailhouse.storage"):
        assert store.append([record(f"e{i}") for i in range(4)]).accepted == [0, 1, 2, 3]
    assert "merging the recent eventId keys failed" in caplog.text
    assert _tables(path) == (0, 4, 0)
    assert store.append([record("e2", "2026-10-07T00:00:00Z")]).duplicates == [0]
    assert _found(store, "e3") == ["e3"]
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER no_merge")
    assert store.append([record("e4")]).accepted == [0]
    assert _tables(path) == (5, 0, 5)
    assert store.append([record(f"e{i}", "15:00:00") for i in range(5)]).duplicates == list(range(5))
    store.close()


def test_a_store_from_before_0018_moves_its_keys_and_keeps_deduping(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.append([record(f"e{i}", f"10:00:0{i}") for i in range(4)])
    store.close()
    with sqlite3.connect(path, isolation_level=None) as conn:
        for table in ("event_keys", "event_keys_recent", "event_keys_state"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("CREATE INDEX events_key ON events (account, event_key)")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0018_event_keys_merged_in_bulk'")
    store = SqliteStore(path)
    assert _tables(path) == (4, 0, 4)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'events_key'").fetchall() == []
    assert store.append([record("e1", "2026-10-08T10:00:00Z"), record("e9")]).duplicates == [0]
    assert _found(store, "e2") == ["e2"]
    store.close()


def test_an_eventid_lookup_reads_rows_by_seq(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plan.db")
    store.append([record("e1")])
    flt = EventFilter(start_ms=0, end_ms=1 << 45, equals={Attr.EVENT_ID: frozenset({"e1"})})
    plan = " | ".join(store.explain_find(account_id=ACCOUNT, flt=flt))
    assert "SEARCH e USING INTEGER PRIMARY KEY" in plan
    assert "SEARCH event_keys USING PRIMARY KEY (account=? AND event_key=?)" in plan
    assert "SEARCH event_keys_recent USING PRIMARY KEY (gen=? AND account=? AND event_key=?)" in plan
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
