"""The gateway reuses active AccessKey rows for a few seconds; a disabled or deleted key stops working
within that TTL, and one that is enabled or created works at once (docs/compatibility.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.api.context import Services
from trailhouse.api.limits import InProcessLimits
from trailhouse.api.rpc.auth import KEY_CACHE_TTL_S, AccessKeyCache
from trailhouse.api.rpc.gateway import Gateway
from trailhouse.model.credentials import KeyStatus
from trailhouse.service.credentials import NewAccessKey, create_access_key
from trailhouse.service.pagetoken import PageTokens
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.settings import Settings
from trailhouse.storage.sqlite import SqliteStore

from ._signed import signed_query

ACCOUNT = "1234567890123456"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The real store, counting AccessKey look-ups."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.key_lookups = 0

    def get_access_key(self, access_key_id: str) -> Any:
        self.key_lookups += 1
        return self._store.get_access_key(access_key_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "trail.db")
    yield s
    s.close()


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(load_master_key(None, tmp_path))


def make_gateway(store: Any, sealer: Sealer, clock: Clock, ttl_s: float = KEY_CACHE_TTL_S) -> Gateway:
    settings = Settings(throttle_lookup_events=0, throttle_access_key_usage=0)
    svc = Services(settings=settings, store=store, page_tokens=PageTokens.for_store(store))
    return Gateway(svc, sealer, InProcessLimits(), key_cache_ttl_s=ttl_s, clock=clock)


def lookup(gateway: Gateway, key: NewAccessKey) -> tuple[int, str | None]:
    """A V1-signed LookupEvents; the status and, for an error, its Code."""
    outcome = gateway.process("GET", signed_query(key), {"host": "h"}, b"", "R", "/")
    return outcome.status, orjson.loads(outcome.body).get("Code")


def test_the_store_is_asked_once_per_ttl(store: SqliteStore, sealer: Sealer) -> None:
    counting, clock = CountingStore(store), Clock()
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    gateway = make_gateway(counting, sealer, clock)
    for _ in range(5):
        assert lookup(gateway, key) == (200, None)
    assert counting.key_lookups == 1
    clock.now += KEY_CACHE_TTL_S
    assert lookup(gateway, key) == (200, None)
    assert counting.key_lookups == 2


def test_a_disabled_key_stops_working_within_the_ttl(store: SqliteStore, sealer: Sealer) -> None:
    clock = Clock()
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    gateway = make_gateway(store, sealer, clock)
    assert lookup(gateway, key) == (200, None)
    assert store.set_access_key_status(key.key.access_key_id, KeyStatus.INACTIVE)
    clock.now += KEY_CACHE_TTL_S - 0.01  # still inside the TTL: the cached row answers
    assert lookup(gateway, key) == (200, None)
    clock.now += 0.01
    assert lookup(gateway, key) == (400, "InvalidAccessKeyId.Inactive")
    # Inactive keys are not cached: enabling it again works at once.
    assert store.set_access_key_status(key.key.access_key_id, KeyStatus.ACTIVE)
    assert lookup(gateway, key) == (200, None)


def test_a_deleted_key_stops_working_within_the_ttl(store: SqliteStore, sealer: Sealer) -> None:
    clock = Clock()
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    gateway = make_gateway(store, sealer, clock)
    assert lookup(gateway, key) == (200, None)
    assert store.delete_access_key(key.key.access_key_id)
    clock.now += KEY_CACHE_TTL_S
    assert lookup(gateway, key) == (404, "InvalidAccessKeyId.NotFound")


def test_unknown_and_inactive_keys_are_not_cached(store: SqliteStore, sealer: Sealer) -> None:
    clock = Clock()
    counting = CountingStore(store)
    cache = AccessKeyCache(counting, sealer, clock=clock)  # type: ignore[arg-type]
    assert cache.get("LTAInever") is None
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    store.set_access_key_status(key.key.access_key_id, KeyStatus.INACTIVE)
    assert cache.get(key.key.access_key_id).status is KeyStatus.INACTIVE  # type: ignore[union-attr]
    store.set_access_key_status(key.key.access_key_id, KeyStatus.ACTIVE)
    cached = cache.get(key.key.access_key_id)
    assert cached is not None and cached.status is KeyStatus.ACTIVE
    assert cache.secret(cached) == key.secret and cache.secret(cached) == key.secret
    assert counting.key_lookups == 3


def test_ttl_zero_asks_the_store_every_time(store: SqliteStore, sealer: Sealer) -> None:
    clock = Clock()
    key = create_access_key(store, sealer, account_id=ACCOUNT)
    gateway = make_gateway(store, sealer, clock, ttl_s=0)
    assert lookup(gateway, key) == (200, None)
    assert store.set_access_key_status(key.key.access_key_id, KeyStatus.INACTIVE)
    assert lookup(gateway, key) == (400, "InvalidAccessKeyId.Inactive")


def test_the_cache_does_not_grow_without_bound(store: SqliteStore, sealer: Sealer) -> None:
    clock = Clock()
    cache = AccessKeyCache(store, sealer, clock=clock, max_entries=3)
    keys = [create_access_key(store, sealer, account_id=ACCOUNT) for _ in range(7)]
    for k in keys:
        assert cache.get(k.key.access_key_id) is not None
        assert len(cache._entries) <= 3
