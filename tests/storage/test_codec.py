"""Body packing: every scheme round-trips, old rows still decode, and packing pays for itself."""

from __future__ import annotations

import threading
import zlib

import orjson
from hypothesis import given
from hypothesis import strategies as st

from trailhouse.demo.generate import generate_events
from trailhouse.storage import codec


@given(st.binary(max_size=4096))
def test_any_bytes_round_trip(body: bytes) -> None:
    assert codec.unpack(codec.pack(body)) == body


def test_events_shrink_to_well_under_half() -> None:
    bodies = [orjson.dumps(e) for e in generate_events(seed=5, count=500, end_ms=1_790_000_000_000)]
    packed = [codec.pack(b) for b in bodies]
    assert all(p[0] == 2 for p in packed)
    assert sum(map(len, packed)) < 0.4 * sum(map(len, bodies))
    assert [codec.unpack(p) for p in packed] == bodies


def test_first_layout_still_decodes() -> None:
    body = b'{"eventId":"old","eventName":"DescribeInstances"}'
    compressor = zlib.compressobj(level=1, zdict=codec._ZDICT_V1)
    old_row = b"\x01" + compressor.compress(body) + compressor.flush()
    assert codec.unpack(old_row) == body
    assert codec.unpack(b"\x00" + body) == body


def test_threads_use_their_own_contexts() -> None:
    bodies = [orjson.dumps({"n": i, "pad": "x" * (i % 300)}) for i in range(400)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for b in bodies:
                assert codec.unpack(codec.pack(b)) == b
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_record_packed_ahead_gives_the_same_row() -> None:
    """``trailhouse ingest --workers`` packs bodies in its worker processes (``packed_record``): the
    row either backend writes is the one the store would have built from the plain record."""
    from trailhouse.model.event import event_from_mapping
    from trailhouse.model.times import now_ms
    from trailhouse.storage.sql.dialect import POSTGRES, SQLITE
    from trailhouse.storage.sql.rows import PackedRecord, event_row, packed_record

    terms: dict[str | None, int] = {}

    def tid(value: str | None) -> int | None:
        return None if value is None else terms.setdefault(value, len(terms) + 1)

    for event in generate_events(seed=3, count=50, end_ms=now_ms()):
        record = event_from_mapping(event)
        packed = packed_record(record)
        assert isinstance(packed, PackedRecord) and codec.unpack(packed.packed_body) == record.body
        for dialect in (SQLITE, POSTGRES):
            assert event_row(packed, 7, tid, dialect) == event_row(record, 7, tid, dialect)
