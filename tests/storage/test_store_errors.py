"""The error contract of both backends: a real failure reaches the caller as one of the store's errors
(StoreError, StoreUnavailable, QueryTimeout, QueryCancelled), never as a sqlite3 or psycopg exception.

``pytest.raises`` lets any other exception through, so a driver error escaping a method fails here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from trailhouse.model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from trailhouse.model.delivery import DeliveryCheckpoint
from trailhouse.model.insights import InsightQuery
from trailhouse.model.query import Attr, EventFilter, UsageKind
from trailhouse.model.trail import (
    DataEventSelector,
    EventRW,
    HistoryJob,
    HistoryJobStatus,
    Trail,
    TrailStatus,
)
from trailhouse.storage import open_store
from trailhouse.storage import sqlite as sqlite_backend
from trailhouse.storage.base import (
    DetectorCheckpoint,
    EventStore,
    LogAppend,
    QueryCancelled,
    StoreError,
    StoreUnavailable,
)
from trailhouse.storage.budget import query_budget
from trailhouse.storage.postgres import PostgresStore
from trailhouse.storage.sqlite import SqliteStore
from trailhouse.storage.units import build_unit

from .conftest import ACCOUNT, Backend, at, record

WINDOW = EventFilter(at("2026-01-01T00:00:00Z"), at("2026-12-31T23:59:59Z"))
KEY = AccessKey("LTAIerr", ACCOUNT, "alice", b"sealed", KeyStatus.ACTIVE, (), 1)
CHECKPOINT = DeliveryCheckpoint(ACCOUNT, "t", "oss", "1", 0)
TRAIL = Trail(
    ACCOUNT, "err-trail", "cn-hangzhou", "All", EventRW.WRITE, TrailStatus.FRESH, oss_bucket_name="err-b"
)
SELECTOR = DataEventSelector(ACCOUNT, "err-trail", "[]", True, (), 1, 1)
JOB = HistoryJob(1, ACCOUNT, "err-trail", "cn-hangzhou", HistoryJobStatus.INITIALIZING, 0, 1, "", 1, 1)
TOKEN = ApiToken("tok-err", b"\x07" * 32, (ACCOUNT,), False, (TokenScope.READ,), 1)

#: Every public method of the store contract, called with plausible arguments.
CALLS: dict[str, Callable[[EventStore], Any]] = {
    "append": lambda s: s.append([record("late")]),
    "append_units": lambda s: s.append_units([build_unit([record("later")])]),
    "find_events": lambda s: s.find_events(
        account_id=ACCOUNT, flt=WINDOW, after=None, descending=True, limit=10
    ),
    "iter_events": lambda s: list(s.iter_events(account_id=ACCOUNT, flt=WINDOW, descending=False)),
    "summarize": lambda s: s.summarize(account_id=ACCOUNT, start_ms=WINDOW.start_ms, end_ms=WINDOW.end_ms),
    "count_by_time": lambda s: s.count_by_time(
        account_id=ACCOUNT, flt=WINDOW, origin_ms=WINDOW.start_ms, bucket_ms=3_600_000
    ),
    "resource_types": lambda s: s.resource_types(account_id=ACCOUNT),
    "events_by_seq": lambda s: s.events_by_seq(account_id=ACCOUNT, seqs=[1]),
    "read_log": lambda s: s.read_log(after_seq=0, limit=10),
    "count_events": lambda s: s.count_events(),
    "usage": lambda s: s.usage(
        account_id=ACCOUNT,
        access_key_id="LTAIalice",
        kind=UsageKind.EVENT,
        service_name=None,
        since_ms=0,
        after=None,
        limit=10,
    ),
    "save_access_key": lambda s: s.save_access_key(KEY),
    "get_access_key": lambda s: s.get_access_key("LTAIerr"),
    "list_access_keys": lambda s: s.list_access_keys(account_id=ACCOUNT),
    "list_all_access_keys": lambda s: s.list_all_access_keys(),
    "set_access_key_status": lambda s: s.set_access_key_status("LTAIerr", KeyStatus.INACTIVE),
    "delete_access_key": lambda s: s.delete_access_key("LTAIerr"),
    "save_token": lambda s: s.save_token(TOKEN),
    "find_token": lambda s: s.find_token(TOKEN.token_hash),
    "list_tokens": lambda s: s.list_tokens(),
    "delete_token": lambda s: s.delete_token("tok-err"),
    "meta_get_or_set": lambda s: s.meta_get_or_set("errors-test", b"v"),
    # the Merkle log (storage/sql/merkle_log.py)
    "log_sequence": lambda s: s.log_sequence(
        lambda entries, view: LogAppend(max((e.seq for e in entries), default=0), [], [], []), limit=10
    ),
    "log_claim": lambda s: s.log_claim(owner="o", now_ms=1, lease_ms=1000),
    "log_head": lambda s: s.log_head(account_id=ACCOUNT),
    "log_tiles": lambda s: s.log_tiles(account_id=ACCOUNT, refs=[(0, 0)]),
    "log_proof_tiles": lambda s: s.log_proof_tiles(account_id=ACCOUNT, refs=[(0, 0), (1, 0)]),
    "log_fill_interiors": lambda s: s.log_fill_interiors(lambda hashes: hashes, limit=4, min_level=1),
    "log_leaf_index": lambda s: s.log_leaf_index(account_id=ACCOUNT, seq=1),
    "log_leaf_seqs": lambda s: s.log_leaf_seqs(account_id=ACCOUNT, start=0, end=1),
    "log_watermark": lambda s: s.log_watermark(),
    # trail delivery (storage/sql/delivery.py)
    "newest_seq": lambda s: s.newest_seq(),
    "get_checkpoint": lambda s: s.get_checkpoint(account_id=ACCOUNT, trail_name="t", sink="oss"),
    "list_checkpoints": lambda s: s.list_checkpoints(account_id=ACCOUNT, trail_name="t"),
    "save_checkpoint": lambda s: s.save_checkpoint(CHECKPOINT, lease="l", owner="o"),
    "delete_checkpoints": lambda s: s.delete_checkpoints(account_id=ACCOUNT, trail_name="t"),
    "take_lease": lambda s: s.take_lease("l", owner="o", now_ms=1, ttl_ms=1000),
    "release_lease": lambda s: s.release_lease("l", owner="o"),
    "lease_owner": lambda s: s.lease_owner("l", now_ms=1),
    "create_trail": lambda s: s.create_trail(TRAIL, max_per_region=5, max_organization=1),
    "get_trail": lambda s: s.get_trail(account_id=ACCOUNT, name=TRAIL.name),
    "list_trails": lambda s: s.list_trails(account_id=ACCOUNT),
    "list_all_trails": lambda s: s.list_all_trails(),
    "update_trail": lambda s: s.update_trail(TRAIL),
    "delete_trail": lambda s: s.delete_trail(account_id=ACCOUNT, name=TRAIL.name),
    "put_data_event_selector": lambda s: s.put_data_event_selector(SELECTOR),
    "get_data_event_selector": lambda s: s.get_data_event_selector(account_id=ACCOUNT, trail_name=TRAIL.name),
    "list_data_event_selectors": lambda s: s.list_data_event_selectors(account_id=ACCOUNT),
    "delete_data_event_selector": lambda s: s.delete_data_event_selector(
        account_id=ACCOUNT, trail_name=TRAIL.name
    ),
    "create_history_job": lambda s: s.create_history_job(JOB, max_open_per_account=1),
    "get_history_job": lambda s: s.get_history_job(account_id=ACCOUNT, job_id=1),
    "list_history_jobs": lambda s: s.list_history_jobs(account_id=ACCOUNT, offset=0, limit=10),
    "delete_history_job": lambda s: s.delete_history_job(account_id=ACCOUNT, job_id=1),
    "list_open_history_jobs": lambda s: s.list_open_history_jobs(),
    "update_history_job": lambda s: s.update_history_job(JOB),
    "add_organization_member": lambda s: s.add_organization_member(
        management_account_id=ACCOUNT, member_account_id="1111", organization_id="rd-err", now_ms=1
    ),
    "remove_organization_member": lambda s: s.remove_organization_member(
        management_account_id=ACCOUNT, member_account_id="1111"
    ),
    "delete_organization": lambda s: s.delete_organization(management_account_id=ACCOUNT),
    "organization_of": lambda s: s.organization_of(ACCOUNT),
    "list_organizations": lambda s: s.list_organizations(),
    "get_account_setting": lambda s: s.get_account_setting(account_id=ACCOUNT, name="n"),
    "set_account_setting": lambda s: s.set_account_setting(account_id=ACCOUNT, name="n", value="v"),
    "insight_types_enabled": lambda s: s.insight_types_enabled(account_id=ACCOUNT),
    "set_insight_type": lambda s: s.set_insight_type(
        account_id=ACCOUNT, insight_type="IpInsight", enabled=True, now_ms=1
    ),
    "all_enabled_insight_types": lambda s: s.all_enabled_insight_types(),
    "put_insight_selectors": lambda s: s.put_insight_selectors(
        account_id=ACCOUNT, trail_name="t", selectors=["IpInsight"], now_ms=1
    ),
    "get_insight_selectors": lambda s: s.get_insight_selectors(account_id=ACCOUNT, trail_name="t"),
    "find_insights": lambda s: s.find_insights(
        account_id=ACCOUNT, query=InsightQuery(0, 1), after=None, limit=10
    ),
    "count_insights": lambda s: s.count_insights(account_id=ACCOUNT, start_ms=0, end_ms=1),
    "insights_after": lambda s: s.insights_after(account_id=ACCOUNT, after_ref=0, limit=10),
    "last_insight_ref": lambda s: s.last_insight_ref(account_id=ACCOUNT),
    "all_insights_after": lambda s: s.all_insights_after(after_ref=0, limit=10),
    "newest_insight_ref": lambda s: s.newest_insight_ref(),
    "take_detector_lease": lambda s: s.take_detector_lease(detector="d", owner="o", now_ms=1, ttl_ms=1),
    "detector_checkpoint": lambda s: s.detector_checkpoint(detector="d"),
    "commit_insights": lambda s: s.commit_insights(
        [], detector="d", owner="o", checkpoint=DetectorCheckpoint(1, b"")
    ),
    "count_matching": lambda s: s.count_matching(account_id=ACCOUNT, flt=WINDOW, cap=10),
}
#: Calls that may also do nothing on a closed store (SQLite's housekeeping skips a closed file).
MAY_BE_NO_OP = {"maintain": lambda s: s.maintain(now_ms=at("10:00:00"))}

WRITES = [
    "append",
    "append_units",
    "save_access_key",
    "set_access_key_status",
    "delete_access_key",
    "save_token",
    "delete_token",
    "meta_get_or_set",
    # log_sequence is not here: with nothing new to sequence it reads and writes nothing.
    "log_claim",
    "save_checkpoint",
    "take_lease",
    "create_trail",
    "update_trail",
    "put_data_event_selector",
    "create_history_job",
    "add_organization_member",
    "set_account_setting",
    "set_insight_type",
    "put_insight_selectors",
    "take_detector_lease",
]


def test_the_contract_lists_every_public_method() -> None:
    """A method added to a backend must be added here, so its errors are tested too."""
    # replay_reads makes the gateway's asynchronous reader; its statements fail as any other's.
    extra = {"close", "applied_migrations", "explain_find", "replay_reads"}
    for cls, own in (
        (SqliteStore, set()),
        (PostgresStore, {"analyze", "partitions", "ensure_partitions", "drop_expired_partitions"}),
    ):
        public = {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}
        assert public == set(CALLS) | set(MAY_BE_NO_OP) | extra | own, cls.__name__


@pytest.mark.parametrize("name", [*CALLS, *MAY_BE_NO_OP, "applied_migrations"])
def test_a_closed_store_refuses_with_store_error(store: EventStore, name: str) -> None:
    store.append([record("e1")])
    store.find_events(account_id=ACCOUNT, flt=WINDOW, after=None, descending=True, limit=1)
    store.close()
    call = {**CALLS, **MAY_BE_NO_OP, "applied_migrations": lambda s: s.applied_migrations()}[name]
    if name in MAY_BE_NO_OP:
        with contextlib.suppress(StoreError):
            call(store)
        return
    with pytest.raises(StoreError):
        call(store)
    store.close()  # closing again is harmless


def test_a_used_then_closed_sqlite_store_refuses_on_every_thread(tmp_path: Path) -> None:
    """The reading thread's connection is closed underneath it: sqlite3 says ProgrammingError."""
    store = SqliteStore(tmp_path / "closed.db")
    store.append([record("e1")])
    assert store.count_events() == 1
    store.close()
    for name in ("count_events", "find_events", "get_access_key", "list_tokens", "read_log"):
        with pytest.raises(StoreError):
            CALLS[name](store)


@pytest.mark.parametrize("name", WRITES)
def test_writes_behind_another_connections_exclusive_lock_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(sqlite_backend, "_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "locked.db"
    store = SqliteStore(path)
    if name in {"set_access_key_status", "delete_access_key"}:
        store.save_access_key(KEY)
    if name == "delete_token":
        store.save_token(TOKEN)
    if name in {"update_trail", "put_data_event_selector"}:
        store.create_trail(TRAIL, max_per_region=5, max_organization=1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            CALLS[name](store)
        assert time.monotonic() - started < 3
    finally:
        other.execute("ROLLBACK")
        other.close()
    CALLS[name](store)  # and it works again once the lock is gone
    store.close()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a SQLite database, not even its header" * 100)
    with pytest.raises(StoreError, match="cannot open SQLite database"):
        SqliteStore(path)


def test_a_postgres_port_nobody_listens_on_is_unavailable(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot open PostgreSQL database"):
        PostgresStore("postgresql://127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(StoreUnavailable):
        open_store("postgresql://127.0.0.1:1/test?connect_timeout=2")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "url", ["postgresql://127.0.0.1/test?nosuchoption=1", "postgresql://[::1/test", "postgresql://h:port/x"]
)
def test_a_malformed_postgres_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError):
        PostgresStore(url)


@pytest.mark.postgres
def test_a_postgres_connection_killed_under_the_store_is_unavailable(pg_backend: Backend) -> None:
    store = pg_backend.open(pool_size=1)
    assert isinstance(store, PostgresStore)
    with store._conn() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(pg_backend.location, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StoreUnavailable):
        store.count_events()


def _slow_read(store: EventStore) -> Any:
    flt = EventFilter(WINDOW.start_ms, WINDOW.end_ms, prefixes={Attr.EVENT_NAME: "Describe"})
    return list(store.iter_events(account_id=ACCOUNT, flt=flt, descending=True, batch=1))


def test_a_cancelled_budget_stops_reads_with_query_cancelled(store: EventStore) -> None:
    store.append([record(f"c{i}", f"10:{i // 60:02d}:{i % 60:02d}") for i in range(200)])
    with query_budget(60) as budget:
        budget.cancel()
        with pytest.raises(QueryCancelled):
            _slow_read(store)
