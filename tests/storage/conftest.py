"""Backends for the storage tests: every test asking for ``store`` runs once per backend.

``sqlite`` is a real file in the test's tmp_path; ``postgres`` is a fresh schema of the PostgreSQL
named by TRAILHOUSE_TEST_PG (default: the local one), dropped afterwards. When PostgreSQL cannot be
reached the postgres cases skip loudly, naming the URL and how to start it, and fail under CI=true
(``pg_available`` and ``pg_schema_url`` in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trailhouse.model.event import EventRecord, event_from_mapping
from trailhouse.model.times import parse_wire_time
from trailhouse.storage.base import EventStore
from trailhouse.storage.postgres import PostgresStore
from trailhouse.storage.sqlite import SqliteStore

from ..conftest import pg_schema_url

ACCOUNT = "1234567890123456"
OTHER_ACCOUNT = "6543210987654321"
#: How many recent eventId keys a SQLite store of these tests gathers before merging them.
MERGE_KEYS_AT = 5
#: A fixed day the test events fall on (PostgreSQL creates that month's partition on demand).
DAY = "2026-10-05"


class Backend:
    """Opens stores on one database; ``open()`` again is another process or node on the same data."""

    def __init__(self, name: str, location: str) -> None:
        self.name = name
        self.location = location
        self._opened: list[EventStore] = []

    def open(self, **options: Any) -> EventStore:
        store: EventStore
        if self.name == "sqlite":
            # Recent eventId keys are merged into event_keys every few events here (2^18 in
            # service), so every test sees events on both sides of a merge (storage.sqlite_keys).
            store = SqliteStore(self.location, **({"merge_keys_at": MERGE_KEYS_AT} | options))
        else:
            # No partitions ahead of the current month unless a test asks: each costs time.
            store = PostgresStore(self.location, **({"ahead_months": 0} | options))
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self._opened:
            store.close()


@contextlib.contextmanager
def open_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
    with contextlib.ExitStack() as stack:
        if name == "sqlite":
            backend = Backend(name, str(tmp_path / f"{name}.db"))
        else:
            base = request.getfixturevalue("pg_available")
            backend = Backend(name, stack.enter_context(pg_schema_url(base)))
        # Registered last, so stores close before their schema is dropped.
        stack.callback(backend.close_all)
        yield backend


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_backend(request.param, tmp_path, request) as b:
        yield b


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return backend.open()


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """PostgreSQL only, for the tests of what SQLite does not have (partitions, several nodes)."""
    with open_backend("postgres", tmp_path, request) as b:
        yield b


@pytest.fixture
def pg_store(pg_backend: Backend) -> PostgresStore:
    store = pg_backend.open()
    assert isinstance(store, PostgresStore)
    return store


# -- events -------------------------------------------------------------------------------------


def event(event_id: str, time: str = "10:00:00", **extra: Any) -> dict[str, Any]:
    """A valid event on DAY; ``time`` may be a full wire time. Keyword arguments override fields."""
    identity: dict[str, Any] = {
        "type": "ram-user",
        "accountId": ACCOUNT,
        "principalId": "2000",
        "userName": "alice",
        "accessKeyId": "LTAIalice",
    }
    identity.update(extra.pop("userIdentity", {}))
    body: dict[str, Any] = {
        "eventId": event_id,
        "eventVersion": 1,
        "eventTime": time if "T" in time else f"{DAY}T{time}Z",
        "eventName": "DescribeInstances",
        "eventType": "ApiCall",
        "eventRW": "Read",
        "eventCategory": "Management",
        "serviceName": "Ecs",
        "acsRegion": "cn-hangzhou",
        "requestId": f"req-{event_id}",
        "sourceIpAddress": "10.0.0.1",
        "userIdentity": identity,
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def record(event_id: str, time: str = "10:00:00", **extra: Any) -> EventRecord:
    return event_from_mapping(event(event_id, time, **extra))


def at(time: str) -> int:
    """Epoch ms of a time on DAY, or of a full wire time."""
    return parse_wire_time(time if "T" in time else f"{DAY}T{time}Z")
