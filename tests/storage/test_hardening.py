"""Storage defects found from outside, each pinned on every backend it concerns.

* an eventId is unique per account whatever its time (SQLite de-duplicated within a UTC day only),
  and stores that took such doubles are repaired when they migrate;
* a short ResourceType resolves on PostgreSQL (``resource_types`` was missing there);
* a request's budget stops a long read with QueryTimeout / QueryCancelled on both backends;
* a locked SQLite file answers StoreUnavailable in bounded time, not after a hang;
* read-only opens of a store that does not exist raise StoreMissing instead of creating it;
* the SQLite file is created readable by its owner only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from trailhouse.model.event import key_hash
from trailhouse.model.query import Attr, EventFilter, UsageKind
from trailhouse.storage import open_store
from trailhouse.storage import sqlite as sqlite_backend
from trailhouse.storage.base import (
    EventStore,
    QueryCancelled,
    QueryTimeout,
    StoreMissing,
    StoreUnavailable,
)
from trailhouse.storage.budget import query_budget
from trailhouse.storage.sqlite import SqliteStore

from ..conftest import pg_schema_url
from .conftest import ACCOUNT, Backend, at, record

WHOLE_YEAR = EventFilter(at("2026-01-01T00:00:00Z"), at("2026-12-31T23:59:59Z"))


def _ids(store: EventStore, flt: EventFilter = WHOLE_YEAR) -> list[str]:
    return [e.event_id for e in store.iter_events(account_id=ACCOUNT, flt=flt, descending=False, batch=1000)]


def _calls(store: EventStore, key: str = "LTAIalice") -> int:
    rows = store.usage(
        account_id=ACCOUNT,
        access_key_id=key,
        kind=UsageKind.PRODUCT,
        service_name=None,
        since_ms=0,
        after=None,
        limit=10,
    )
    return sum(row.calls for row in rows)


# -- eventId unique per account, whatever its time -------------------------------------------------


def test_an_event_resent_with_a_time_across_midnight_is_a_duplicate(store: EventStore) -> None:
    first = store.append([record("e-midnight", "2026-10-05T23:59:59Z")])
    again = store.append([record("e-midnight", "2026-10-06T00:00:01Z")])
    far = store.append([record("e-midnight", "2026-03-01T12:00:00Z")])
    assert (first.accepted, again.accepted, far.accepted) == ([0], [], [])
    assert again.duplicates == far.duplicates == [0]
    assert _ids(store) == ["e-midnight"]
    assert _calls(store) == 1
    # Within one batch too, and the stored event is the first arrival.
    batch = store.append([record("e-b", "2026-10-07T00:00:01Z"), record("e-b", "2026-10-06T23:59:59Z")])
    assert (batch.accepted, batch.duplicates) == ([0], [1])
    found = store.find_events(
        account_id=ACCOUNT,
        flt=EventFilter(WHOLE_YEAR.start_ms, WHOLE_YEAR.end_ms, equals={Attr.EVENT_ID: ("e-b",)}),
        after=None,
        descending=True,
        limit=10,
    )
    assert [e.event_time_ms for e in found] == [at("2026-10-07T00:00:01Z")]


def _store_twice_the_old_way(path: Path) -> None:
    """Put a SQLite file back to its pre-0006 state holding one event twice (in two days)."""
    store = SqliteStore(path)
    store.append([record("dup", "2026-10-05T23:59:00Z"), record("solo", "2026-10-05T10:00:00Z")])
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # Before 0018 the dedupe was an index of events; before 0006 that index was led by the day.
    for table in ("event_keys", "event_keys_recent", "event_keys_state"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("CREATE INDEX events_key ON events (account, event_time / 86400000, event_key)")
    conn.execute(
        "DELETE FROM schema_migrations"
        " WHERE name IN ('0006_event_ids_unique_per_account', '0018_event_keys_merged_in_bulk')"
    )
    columns = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
    others = ", ".join(c for c in columns if c not in ("seq", "event_time"))
    conn.execute(
        f"INSERT INTO events (seq, event_time, {others}) SELECT seq + 100, event_time + 120000, {others}"
        " FROM events WHERE event_key = ?",
        (key_hash("dup"),),
    )
    conn.execute(
        "INSERT INTO event_resources SELECT seq + 100, account, event_time + 120000, rtype, rname"
        " FROM event_resources"
        " WHERE seq = (SELECT seq FROM events WHERE event_key = ? ORDER BY seq LIMIT 1)",
        (key_hash("dup"),),
    )
    # The doubled event was counted twice in the usage of its key, as ingest did then.
    conn.execute("UPDATE key_usage SET calls = calls + 1")
    conn.close()


def test_migrating_an_old_sqlite_store_removes_its_doubles_keeping_the_first(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _store_twice_the_old_way(path)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM events WHERE event_key = ?", (key_hash("dup"),)).fetchone() == (
        2,
    )
    raw.close()

    store = SqliteStore(path)
    assert len(store.repairs) == 1
    assert "removed 1 events stored twice" in store.repairs[0]
    assert sorted(_ids(store)) == ["dup", "solo"]
    dup = [
        e
        for e in store.iter_events(account_id=ACCOUNT, flt=WHOLE_YEAR, descending=False)
        if e.event_id == "dup"
    ]
    assert [e.event_time_ms for e in dup] == [at("2026-10-05T23:59:00Z")]  # the first arrival
    assert _calls(store) == 2  # usage rebuilt from what remains
    assert store.append([record("dup", "2026-10-09T08:00:00Z")]).duplicates == [0]
    store.close()
    again = SqliteStore(path)  # nothing left to repair
    assert again.repairs == []
    again.close()


def test_a_repaired_store_copies_to_postgres(tmp_path: Path, pg_available: str) -> None:
    from trailhouse.storage.copy import copy_store

    path = tmp_path / "old.db"
    _store_twice_the_old_way(path)
    source = SqliteStore(path)
    with pg_schema_url(pg_available) as url:
        target = open_store(url)
        try:
            result = copy_store(source, target)
            assert result.copied == 2
            assert sorted(_ids(target)) == ["dup", "solo"]
        finally:
            target.close()
    source.close()


# -- short resource types ----------------------------------------------------------------------------


def test_resource_types_are_listed_on_every_backend(store: EventStore) -> None:
    store.append(
        [
            record("r1", resourceType="ACS::ECS::Instance", resourceName="i-1"),
            record("r2", referencedResources={"ACS::OSS::Bucket": ["b-1"], "ACS::ECS::Instance": ["i-2"]}),
        ]
    )
    assert store.resource_types(account_id=ACCOUNT) == ["ACS::ECS::Instance", "ACS::OSS::Bucket"]
    assert store.resource_types(account_id="0000000000000000") == []


def test_postgres_migration_backfills_resource_types(pg_backend: Backend) -> None:
    store = pg_backend.open()
    store.append([record("r1", resourceType="ACS::ECS::Instance", resourceName="i-1")])
    with psycopg.connect(pg_backend.location, autocommit=True) as conn:
        conn.execute("TRUNCATE account_resource_types")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0004_account_resource_types'")
        conn.execute("DROP TABLE account_resource_types")
    reopened = pg_backend.open()
    assert reopened.resource_types(account_id=ACCOUNT) == ["ACS::ECS::Instance"]


# -- budgets: time limits and cancellation ------------------------------------------------------------


def _many(store: EventStore, n: int = 3000) -> None:
    store.append(
        [
            record(f"m{i}", f"2026-10-05T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
            for i in range(n)
        ]
    )


def _slow_query(store: EventStore) -> Any:
    # A source-IP prefix that matches nothing walks every row of the window.
    flt = EventFilter(WHOLE_YEAR.start_ms, WHOLE_YEAR.end_ms, prefixes={Attr.EVENT_NAME: "Describe"})
    return list(store.iter_events(account_id=ACCOUNT, flt=flt, descending=True, batch=1))


def test_a_spent_budget_stops_reads_with_query_timeout(store: EventStore) -> None:
    _many(store, 200)
    with query_budget(30):
        assert len(_ids(store)) == 200  # within its budget a read runs as ever
    with query_budget(0.000001) as budget:
        time.sleep(0.01)
        with pytest.raises(QueryTimeout, match="limit of"):
            _slow_query(store)
    assert budget.exhausted()


def test_sqlite_interrupts_a_statement_when_its_budget_runs_out(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    _many(store, 20)
    conn = store._reader()
    started = time.monotonic()
    with query_budget(0.2), pytest.raises(QueryTimeout):
        # A statement that would run for minutes: only the progress handler can stop it.
        try:
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            raise sqlite_backend._translate(exc) from exc
    assert time.monotonic() - started < 2
    store.close()


def test_postgres_enforces_the_budget_with_statement_timeout(pg_store: Any) -> None:
    started = time.monotonic()
    with query_budget(0.3), pytest.raises(QueryTimeout), pg_store._conn() as conn:
        conn.execute("SELECT pg_sleep(10)")
    assert time.monotonic() - started < 3
    # The connection goes back to the pool without a limit for work that has no budget.
    with pg_store._conn() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_postgres_cancels_a_statement_when_the_budget_is_cancelled(pg_store: Any) -> None:
    with query_budget(60) as budget:
        threading.Timer(0.3, budget.cancel).start()
        started = time.monotonic()
        with pytest.raises(QueryCancelled), pg_store._conn() as conn:
            conn.execute("SELECT pg_sleep(10)")
    assert time.monotonic() - started < 3


# -- locks, missing stores, file modes ---------------------------------------------------------------------


def test_a_locked_sqlite_file_answers_unavailable_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "_BUSY_TIMEOUT_S", 0.3)
    path = tmp_path / "locked.db"
    store = SqliteStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="locked"):
        store.append([record("x")])
    assert time.monotonic() - started < 3
    other.execute("ROLLBACK")
    assert store.append([record("x")]).accepted == [0]  # and it recovers by itself
    other.close()
    store.close()


def test_opening_a_missing_store_for_reading_creates_nothing(tmp_path: Path, pg_available: str) -> None:
    path = tmp_path / "typo" / "trailhouse.db"
    with pytest.raises(StoreMissing, match="no store at"):
        open_store(f"sqlite:///{path}", create=False)
    assert not path.exists() and not path.parent.exists()
    with pg_schema_url(pg_available) as url:
        with pytest.raises(StoreMissing):
            open_store(url, create=False)
        open_store(url).close()  # created by a command that may create it
        open_store(url, create=False).close()  # then found


def test_the_sqlite_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    old = os.umask(0o022)
    try:
        store = SqliteStore(path)
        store.append([record("p")])
    finally:
        os.umask(old)
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    store.close()
