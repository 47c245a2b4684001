"""Housekeeping: what `maintain` does on each backend, and the uniform errors of credentials."""

from __future__ import annotations

import psycopg
import pytest

from trailhouse.model.credentials import AccessKey, KeyStatus
from trailhouse.model.query import EventFilter
from trailhouse.model.times import DAY_MS, now_ms
from trailhouse.storage.base import EventStore, StoreError
from trailhouse.storage.postgres import PostgresStore

from .conftest import ACCOUNT, at, record


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


def test_maintain_packs_the_indexes_of_ended_months_once(pg_store: PostgresStore) -> None:
    """Indexes of a month that has ended are rebuilt packed (REINDEX CONCURRENTLY) once, and again
    only after the month's heap has grown (an import of old events); lookups answer the same."""
    pg_store.append([record(f"p{i}", f"10:00:{i:02d}") for i in range(20)])
    flt = EventFilter(at("00:00:00"), at("23:59:59"))
    before = pg_store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=100)
    done = pg_store.maintain(now_ms=now_ms())
    assert "packed the indexes of events_2026_10" in done
    assert not [line for line in pg_store.maintain(now_ms=now_ms()) if line.startswith("packed")]
    with psycopg.connect(pg_store.url, autocommit=True) as conn:
        assert conn.execute(
            # regclass, not relname: tests run side by side in schemas of their own.
            "SELECT count(*) FROM pg_index i WHERE i.indrelid = 'events_2026_10'::regclass AND i.indisvalid"
        ).fetchone() == (12,)
        fillfactors = conn.execute(
            "SELECT DISTINCT c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'events_2026_10'::regclass"
        ).fetchall()
        assert fillfactors == [(["fillfactor=100"],)]
        conn.execute("UPDATE partition_packs SET heap_bytes = 1 WHERE name = 'events_2026_10'")
    assert [line for line in pg_store.maintain(now_ms=now_ms()) if line.startswith("packed")] == [
        "packed the indexes of events_2026_10"
    ]
    after = pg_store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=100)
    assert after == before and len(after) == 20
    # A month not yet ended is left as it is, grown or not.
    with psycopg.connect(pg_store.url, autocommit=True) as conn:
        conn.execute("DELETE FROM partition_packs")
    assert not [line for line in pg_store.maintain(now_ms=at("10:00:00")) if line.startswith("packed")]


def test_a_failed_pack_is_reported_with_the_rest(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack that fails (a deadlock with a session locking the table) does not hide what the same
    run created and dropped; the next run tries it again."""
    import trailhouse.storage.postgres as postgres

    def deadlock(conn: object, ended_before_ms: int) -> list[str]:
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(postgres, "pack_months", deadlock)
    done = pg_store.maintain(now_ms=now_ms() + 200 * DAY_MS)
    assert any(line.startswith("created") for line in done)
    assert done[-1].startswith("packing indexes failed, to be tried again at the next run: PostgreSQL")
