"""The eventId and requestId texts out of the event row (migrations sqlite/0017, postgres/0016):
a store whose rows still hold them migrates in place and answers as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integrity.test_log_pending import event_columns
from trailhouse.model.query import Attr, EventFilter
from trailhouse.storage import open_store

from .conftest import ACCOUNT, at, record

WHOLE_DAY = EventFilter(at("00:00:00"), at("23:59:59") + 999)


def _migration(url: str) -> str:
    return "0017_event_id_from_body" if url.startswith("sqlite") else "0016_ids_from_body"


def _by(attr: Attr, value: str) -> EventFilter:
    return EventFilter(WHOLE_DAY.start_ms, WHOLE_DAY.end_ms, equals={attr: (value,)})


def _find(store: Any, flt: EventFilter, *, descending: bool = True, limit: int = 5) -> list[Any]:
    return list(
        store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=descending, limit=limit)
    )


@pytest.fixture
def old_store(backend_url: str) -> Iterator[str]:
    """A store as it was before the migration: each row holds its eventId (and, on PostgreSQL, its
    requestId) text beside the body. Made from today's schema by putting the columns back, filled
    as the old ingest filled them, and forgetting that the migration ran."""
    store: Any = open_store(backend_url)
    records = [record(f"ev-{i}", f"10:00:{i:02d}", requestId=f"req-{i % 5}") for i in range(40)]
    store.append(records)
    sqlite = store.dialect.name == "sqlite"
    ph = store.dialect.ph
    with store._guard():
        if sqlite:
            store._write("ALTER TABLE events ADD COLUMN event_id TEXT NOT NULL DEFAULT ''", ())
        else:
            store._write("ALTER TABLE events ADD COLUMN event_id bytea, ADD COLUMN request_id bytea", ())
        for rec in records:
            if sqlite:
                store._write(
                    f"UPDATE events SET event_id = {ph} WHERE event_key = {ph}", (rec.event_id, rec.event_key)
                )
            else:
                store._write(
                    f"UPDATE events SET event_id = {ph}, request_id = {ph} WHERE event_key = {ph}",
                    (rec.event_id.encode(), (rec.request_id or "").encode(), rec.event_key),
                )
        store._write(f"DELETE FROM schema_migrations WHERE name = {ph}", (_migration(backend_url),))
    store.close()
    yield backend_url


def test_a_store_whose_rows_hold_the_ids_migrates_and_answers_as_before(old_store: str) -> None:
    store: Any = open_store(old_store)
    try:
        assert _migration(old_store) in store.applied_migrations()
        assert not {"event_id", "request_id"} & event_columns(store)
        found = _find(store, _by(Attr.REQUEST_ID, "req-3"), descending=False, limit=100)
        assert [e.event_id for e in found] == [f"ev-{i}" for i in range(40) if i % 5 == 3]
        found = _find(store, _by(Attr.EVENT_ID, "ev-17"))
        assert [(e.event_id, e.event_time_ms) for e in found] == [("ev-17", at("10:00:17"))]
        # Re-sent events are still recognised; new ones are stored without the columns.
        result = store.append([record("ev-5", "10:00:05"), record("ev-new", "11:00:00", requestId="req-3")])
        assert result.duplicates == [0] and result.accepted == [1]
        assert [e.event.event_id for e in store.read_log(after_seq=39, limit=10)] == ["ev-39", "ev-new"]
    finally:
        store.close()


def test_a_damaged_body_matches_no_id_and_fails_nothing(backend_url: str) -> None:
    """A body that cannot be unpacked (damaged on disk, or packed by a later version) holds no id
    the store can read: a lookup whose hash hits it, and the dedupe of a batch naming its eventId,
    must not fail on it. The re-sent event is stored anew (the old copy cannot be read anyway)."""
    store: Any = open_store(backend_url)
    try:
        damaged = record("damaged", "10:00:00", requestId="req-damaged")
        store.append([damaged, record("fine", "10:00:01")])
        ph = store.dialect.ph
        with store._guard():
            store._write(
                f"UPDATE events SET body = {ph} WHERE event_key = {ph}",
                (b"\x7fnot a body", damaged.event_key),
            )
        for flt in (_by(Attr.EVENT_ID, "damaged"), _by(Attr.REQUEST_ID, "req-damaged")):
            assert _find(store, flt) == []
        assert store.append([damaged, record("fine", "10:00:01")]).accepted == [0]
        found = _find(store, _by(Attr.EVENT_ID, "damaged"))
        assert [e.body for e in found] == [damaged.body]
    finally:
        store.close()
