"""Moving a store: SQLite to PostgreSQL (and back), re-runnable, with identical lookups after."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from trailhouse.model.event import event_from_mapping
from trailhouse.model.query import UsageKind
from trailhouse.storage import codec
from trailhouse.storage.base import EventStore
from trailhouse.storage.copy import copy_store
from trailhouse.storage.sqlite import SqliteStore

from .conftest import ACCOUNT, OTHER_ACCOUNT, Backend
from .test_contract import FILTERS, dataset, find_all

pytestmark = pytest.mark.postgres


def _source(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    raw = (
        b'{"eventId":"raw", "eventTime":"2026-10-05T10:00:00Z",  "eventName":"X",'
        b' "userIdentity":{"accountId":"1234567890123456"}}'
    )
    store.append(dataset())
    store.append([event_from_mapping(orjson.loads(raw), body=raw)])
    store.save_access_key(AccessKey("LTAIa", ACCOUNT, "root", b"\x00sealed", KeyStatus.ACTIVE, (), 1))
    store.save_access_key(
        AccessKey(
            "LTAIb", OTHER_ACCOUNT, "ops", b"sealed", KeyStatus.INACTIVE, ("actiontrail:LookupEvents",), 2
        )
    )
    store.save_token(ApiToken("tok-1", b"\x01" * 32, (ACCOUNT,), False, (TokenScope.READ,), 3))
    store.meta_get_or_set("page_token_key", b"k" * 32)
    return store


def _usage(store: EventStore, kind: UsageKind, key: str) -> list[tuple[Any, ...]]:
    rows = store.usage(
        account_id=ACCOUNT,
        access_key_id=key,
        kind=kind,
        service_name=None,
        since_ms=0,
        after=None,
        limit=1000,
    )
    # Positions hold store-specific term ids, which also break ties in last use: compare the
    # entries, not their order among equal times.
    return sorted(
        (
            u.kind,
            u.service_name,
            u.item,
            u.item_type,
            u.first_used_ms,
            u.last_used_ms,
            u.calls,
            u.failed_calls,
            u.source,
            u.last_seq,
        )
        for u in rows
    )


def _same_lookups(a: EventStore, b: EventStore) -> None:
    for flt in FILTERS.values():
        for account in (ACCOUNT, OTHER_ACCOUNT):
            for descending in (False, True):
                assert find_all(a, flt, descending=descending, account=account) == find_all(
                    b, flt, descending=descending, account=account
                )
    assert a.read_log(after_seq=0, limit=10_000) == b.read_log(after_seq=0, limit=10_000)
    for kind in UsageKind:
        for key in ("LTAIalice", "LTAIbob", "STS.token"):
            assert _usage(a, kind, key) == _usage(b, kind, key)
    assert a.summarize(account_id=ACCOUNT, start_ms=0, end_ms=1 << 50) == b.summarize(
        account_id=ACCOUNT, start_ms=0, end_ms=1 << 50
    )


def test_sqlite_to_postgres_and_back(tmp_path: Path, pg_backend: Backend) -> None:
    source = _source(tmp_path / "source.db")
    target = pg_backend.open()
    seen: list[int] = []
    result = copy_store(source, target, batch=37, progress=seen.append)
    total = source.count_events()
    counts = (result.copied, result.duplicates, result.source_count, result.target_count)
    assert counts == (total, 0, total, total)
    assert seen == [*range(37, total, 37), total]
    _same_lookups(source, target)
    assert target.get_access_key("LTAIa") == source.get_access_key("LTAIa")
    assert target.list_all_access_keys() == source.list_all_access_keys()
    assert target.list_tokens() == source.list_tokens()
    assert target.meta_get_or_set("page_token_key", b"other") == b"k" * 32
    # And back again into a fresh SQLite file: the same data once more.
    back = SqliteStore(tmp_path / "back.db")
    assert copy_store(target, back).copied == total
    _same_lookups(source, back)
    back.close()
    source.close()


def test_rerun_copies_nothing_and_an_interrupted_copy_completes(tmp_path: Path, pg_backend: Backend) -> None:
    source = _source(tmp_path / "source.db")
    target = pg_backend.open()
    total = source.count_events()

    def interrupt(handled: int) -> None:
        if handled >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(source, target, batch=50, progress=interrupt)
    assert target.count_events() == 100  # type: ignore[attr-defined]
    resumed = copy_store(source, target, batch=50)
    assert (resumed.copied, resumed.duplicates, resumed.target_count) == (total - 100, 100, total)
    again = copy_store(source, target)
    assert (again.copied, again.duplicates, again.target_count) == (0, total, total)
    assert len(target.list_all_access_keys()) == 2 and len(target.list_tokens()) == 1
    _same_lookups(source, target)
    source.close()


def test_invalid_source_events_and_meta_conflicts_are_reported(tmp_path: Path, pg_backend: Backend) -> None:
    source = _source(tmp_path / "source.db")
    with sqlite3.connect(tmp_path / "source.db") as conn:
        conn.execute("UPDATE events SET body = ? WHERE seq = 3", (codec.pack(b'{"eventTime": 3}'),))
    target = pg_backend.open()
    target.meta_get_or_set("page_token_key", b"mine")
    result = copy_store(source, target)
    assert [seq for seq, _ in result.invalid] == [3] and "eventId" in result.invalid[0][1]
    assert result.meta_conflicts == ("page_token_key",)
    assert result.target_count == result.source_count - 1
    source.close()


def test_trails_selectors_and_organizations_travel(tmp_path: Path, pg_backend: Backend) -> None:
    from trailhouse.model.trail import DataEventSelector, EventRW, Trail, TrailStatus

    source = SqliteStore(tmp_path / "trails-source.db")
    target = pg_backend.open()
    org = source.add_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER_ACCOUNT, organization_id="rd-copy01", now_ms=5
    )
    trails = [
        Trail(ACCOUNT, f"trail-{i}", "cn-hangzhou", "All", EventRW.ALL, TrailStatus.ENABLE,
              oss_bucket_name=f"bucket-{i}", start_logging_ms=7, create_ms=1, update_ms=2)
        for i in range(5)
    ] + [Trail(OTHER_ACCOUNT, "org-trail", "cn-hangzhou", "All", EventRW.WRITE, TrailStatus.FRESH,
               sls_project_arn="acs:log:cn-hangzhou:1:project/audit", is_organization_trail=True,
               organization_id="rd-copy01")]  # fmt: skip
    for trail in trails:
        assert source.create_trail(trail, max_per_region=5, max_organization=1) is None
    selector = DataEventSelector(ACCOUNT, "trail-1", '[{"ServiceName":"OSS"}]', True, (), 3, 4)
    assert source.put_data_event_selector(selector)
    # The target already has one trail of that name (a rerun): it is kept, the others arrive.
    assert target.create_trail(trails[0], max_per_region=5, max_organization=1) is None
    for _ in range(2):
        copy_store(source, target)
        assert target.list_all_trails() == source.list_all_trails()
        assert target.list_organizations() == [org]
        assert target.list_data_event_selectors(account_id=ACCOUNT) == [selector]
    source.close()
