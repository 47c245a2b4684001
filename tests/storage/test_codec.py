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
