"""Housekeeping: what `maintain` does on each backend, and the uniform errors of credentials."""

from __future__ import annotations

import pytest

from trailhouse.model.credentials import AccessKey, KeyStatus
from trailhouse.model.times import DAY_MS, now_ms
from trailhouse.storage.base import EventStore, StoreError
from trailhouse.storage.postgres import PostgresStore


def test_maintain_runs_on_every_backend(store: EventStore) -> None:
    assert isinstance(store.maintain(now_ms=now_ms()), list)
    assert isinstance(store.maintain(now_ms=now_ms()), list)  # and again, harmlessly


def test_maintain_keeps_partitions_ahead_and_drops_expired(pg_store: PostgresStore) -> None:
    far = now_ms() + 200 * DAY_MS
    done = pg_store.maintain(now_ms=far)
    assert any(line.startswith("created") for line in done)
    names = [name for name, *_ in pg_store.partitions()]
    pg_store.retention_days = 30
    dropped = pg_store.maintain(now_ms=far)
    assert any(line.startswith("dropped") for line in dropped)
    assert len([name for name, *_ in pg_store.partitions()]) < len(names)


def test_duplicate_access_key_is_a_store_error(store: EventStore) -> None:
    key = AccessKey("LTAIdup", "1", "root", b"sealed", KeyStatus.ACTIVE, (), 0)
    store.save_access_key(key)
    with pytest.raises(StoreError):
        store.save_access_key(key)
