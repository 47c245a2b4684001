"""The batch-level layout prototype (bench/batch_layout.py) answers exactly as the current store.

About 2,000 generated events over several days go into a real SqliteStore and into the prototype
in the same batches (decoded by the product's ingest path); every lookup shape of the benchmark is
walked page by page with a keyset cursor in both, and each page must hold the same events in the
same order. Re-sent events must be found by the prototype's eventId dedupe, and the folded usage
must equal the current store's. Not a benchmark: it keeps the prototype from rotting silently.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from bench.batch_layout import BatchStore, check_shapes, shapes_for

from trailhouse.demo.generate import generate_events
from trailhouse.model.event import EventRecord
from trailhouse.model.query import Attr, UsageKind
from trailhouse.service.ingest import decode_ndjson, validate_items
from trailhouse.storage.sqlite import SqliteStore

DAY_MS = 86_400_000
END_MS = 1_796_515_200_000  # a UTC midnight


def _records(seed: int, count: int, days: int) -> list[EventRecord]:
    events = generate_events(
        seed=seed, count=count, end_ms=END_MS, days=days, account_ids=["1234567890123456"]
    )
    lines = [orjson.dumps(e) for e in events]
    records, rejected, _ = validate_items(list(decode_ndjson(lines)), may_write=lambda _a: True)
    assert not rejected
    return records


def test_prototype_pages_equal_the_current_store(tmp_path: Path) -> None:
    records = _records(11, 2_000, days=5)
    current = SqliteStore(tmp_path / "current.db")
    proto = BatchStore(str(tmp_path / "proto.db"))
    try:
        # Batches of several sizes, so pages merge postings of many batches and days.
        for start, size in ((0, 700), (700, 1000), (1700, 150), (1850, 150)):
            batch = records[start : start + size]
            result = current.append(batch)
            assert proto.append(batch) == (len(result.accepted), len(result.duplicates))
        # Re-sent events (any day) are duplicates for both, and nothing new is stored.
        resent = records[100:200] + records[1900:1950]
        assert current.append(resent).accepted == []
        assert proto.append(resent) == (0, len(resent))
        assert proto.written["events"] == len(records)

        account, shapes = shapes_for(records, window_days=3)
        assert {s.name for s in shapes} >= {"none", "EventName", "ResourceName", "EventRW+EventName"}
        deep = check_shapes(current, proto, account, shapes, pages=8, limit=20)
        # The walks went past page 1 (cursor used) for the common shapes.
        assert deep.get("none") is not None and deep.get("EventName") is not None

        key = next(
            v for s in shapes if s.name == "EventAccessKeyId hot" for v in s.flt.equals[Attr.ACCESS_KEY_ID]
        )
        want = [
            (u.item, u.last_used_ms, u.calls)
            for u in current.usage(
                account_id=account,
                access_key_id=key,
                kind=UsageKind.IP,
                service_name=None,
                since_ms=0,
                after=None,
                limit=50,
            )
        ]
        assert want and proto.usage_ips(account, key, None, 50) == want
    finally:
        current.close()
        proto.close()
