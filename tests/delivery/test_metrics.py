"""The engine's counters as /metrics serves them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from trailhouse.api.app import create_app
from trailhouse.delivery.object_storage import DirectoryStorage
from trailhouse.settings import Settings
from trailhouse.storage import open_store

from ._events import add_trail, event, records


def test_metrics_count_what_the_engine_delivered(tmp_path: Path) -> None:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path}/m.db",
        data_dir=str(tmp_path),
        oss_dir=str(tmp_path / "oss"),
        delivery_window_s=0.1,
        # The app's lifespan (its log sequencer) does not run here: no digests to wait for.
        log_sequencer="off",
    )
    store = open_store(settings.db_url)
    DirectoryStorage(tmp_path / "oss").create_bucket("metrics-bucket")
    add_trail(store, oss_bucket_name="metrics-bucket")
    app = create_app(settings, store)
    engine = app.state.delivery

    async def scenario() -> str:
        await engine.run_once()
        store.append(records([event() for _ in range(4)]))
        await engine.run_once()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/metrics")).text

    text = asyncio.run(scenario())
    store.close()
    assert 'trailhouse_delivery_events_total{sink="oss"} 4.0' in text
    assert "trailhouse_delivery_files_total 1.0" in text
    assert 'trailhouse_delivery_errors_total{sink="oss"} 0.0' in text
    assert "trailhouse_delivery_behind_events{trail=" in text
    assert "trailhouse_delivery_stream_lag_p99_seconds" in text
