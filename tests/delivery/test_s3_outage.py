"""The S3 endpoint (a real moto server) unreachable for a while: delivery keeps the error, backs off,
and catches up once it answers again, each event once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.reliability._proxy import TcpProxy
from trailhouse.delivery.engine import DeliveryEngine
from trailhouse.delivery.object_storage import S3Storage
from trailhouse.settings import Settings
from trailhouse.storage.base import EventStore

from ._events import ACCOUNT, add_trail, event, in_files, records


def test_s3_down_then_back(backend_store: EventStore, tmp_path: Path, moto_endpoint: str) -> None:
    store = backend_store
    port = int(moto_endpoint.rsplit(":", 1)[1])
    bucket = "outage-" + uuid.uuid4().hex[:8]
    direct = S3Storage(moto_endpoint)
    direct.create_bucket(bucket)
    with TcpProxy(port) as proxy:
        storage = S3Storage(f"http://127.0.0.1:{proxy.port}")
        add_trail(store, oss_bucket_name=bucket)
        engine = DeliveryEngine(store, Settings(delivery_window_s=0.2), storage=storage, poll_s=0.05)
        asyncio.run(engine.run_once())
        first = [event() for _ in range(4)]
        store.append(records(first))
        proxy.refuse()
        asyncio.run(engine.run_once())
        cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
        assert cp is not None and cp.last_error and cp.window_end_seq  # the window is recorded, not written
        assert in_files(direct, bucket) == []
        second = [event() for _ in range(3)]
        store.append(records(second))
        proxy.forward()
        for run in engine._runs.values():  # skip the backoff's wait
            for state in run.sinks.values():
                state.retry_at = 0.0
                state.failures = 0
        asyncio.run(engine.run_once())
    assert sorted(in_files(direct, bucket)) == sorted(e["eventId"] for e in [*first, *second])
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.last_error == "" and cp.delivered_seq == store.newest_seq()
