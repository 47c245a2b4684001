"""The engine in process: a real store (SQLite file, the local PostgreSQL), a directory of buckets,
a moto S3 server and the machine's NATS server."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from trailhouse.delivery.engine import DeliveryEngine, WindowDelivered
from trailhouse.delivery.object_storage import DirectoryStorage, S3Storage
from trailhouse.model.times import now_ms
from trailhouse.model.trail import DataEventSelector, EventRW
from trailhouse.settings import Settings
from trailhouse.storage.base import EventStore

from ._events import ACCOUNT, OTHER, add_trail, event, in_files, records

KEY = re.compile(
    r"^(?P<prefix>(?:[^/]+/)*?)AliyunLogs/Actiontrail/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/"
    r"Actiontrail_(?P=region)_(?P<stamp>\d{14})_1002_(?P<count>\d+)_(?P<size>\d+)_(?P<md5>[0-9a-f]{32})\.gz$"
)


def engine_for(store: EventStore, storage: object, **kw: object) -> DeliveryEngine:
    settings = Settings(delivery_window_s=0.2)
    return DeliveryEngine(store, settings, storage=storage, poll_s=0.05, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_window_files_hold_the_trails_events_exactly_once(
    backend_store: EventStore, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    store = backend_store
    storage = (
        DirectoryStorage(tmp_path / "oss")
        if where == "directory"
        else S3Storage(request.getfixturevalue("moto_endpoint"))
    )
    bucket = "trail-bucket-" + where + str(abs(hash(tmp_path)) % 10**6)
    storage.create_bucket(bucket)
    store.append(records([event()]))  # before the trail: not delivered
    add_trail(
        store,
        oss_bucket_name=bucket,
        oss_key_prefix="audit/logs",
        event_rw=EventRW.WRITE,
        trail_region="cn-hangzhou,cn-beijing",
    )
    engine = engine_for(store, storage)
    seen: list[WindowDelivered] = []
    engine.after_window.append(seen.append)
    asyncio.run(engine.run_once())  # the trail starts at the head
    wanted = [
        event(),
        event(region="cn-beijing"),
        event(),
        event(rw="Read"),
        event(region="us-west-1"),
        event(account=OTHER),
        event(category="Data", service="Oss"),
    ]
    store.append(records(wanted))
    asyncio.run(engine.run_once())
    ids = sorted(in_files(storage, bucket))
    assert ids == sorted(e["eventId"] for e in wanted[:3])
    keys = list(storage.list(bucket))
    assert len(keys) == 2  # one file per region
    for key in keys:
        m = KEY.match(key)
        assert m, key
        data = storage.get(bucket, key)
        assert m["prefix"] == "audit/logs/" and int(m["size"]) == len(data)
        assert m["md5"] == hashlib.md5(data).hexdigest()
        assert int(m["count"]) == len(orjson.loads(gzip.decompress(data)))
        assert m["stamp"][:8] == m["y"] + m["m"] + m["d"]
    # The stored text, byte for byte, in the files.
    bodies = {e.event.event_id: e.event.body for e in store.read_log(after_seq=0, limit=100)}
    for key in keys:
        raw = gzip.decompress(storage.get(bucket, key))
        for element in orjson.loads(raw):
            assert bodies[element["eventId"]] in raw
    assert len(seen) == 1 and {f.key for f in seen[0].files} == set(keys)
    # Nothing new: nothing delivered again.
    asyncio.run(engine.run_once())
    assert sorted(in_files(storage, bucket)) == ids
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.delivered_seq == store.newest_seq() and cp.delivered_events == 3


def test_data_events_only_where_a_selector_asks(backend_store: EventStore, tmp_path: Path) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("data-bucket")
    add_trail(store, oss_bucket_name="data-bucket")
    store.put_data_event_selector(
        DataEventSelector(ACCOUNT, "trail-one", '[{"ServiceName":"OSS"}]', False, ("cn-shanghai",), 1, 1)
    )
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    wanted = [event(category="Data", service="Oss", region="cn-shanghai"), event()]
    store.append(
        records(
            [
                *wanted,
                event(category="Data", service="Oss"),
                event(category="Data", service="Sls", region="cn-shanghai"),
            ]
        )
    )
    asyncio.run(engine.run_once())
    assert sorted(in_files(storage, "data-bucket")) == sorted(e["eventId"] for e in wanted)


def test_organization_trail_delivers_every_member_in_the_multi_account_layout(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("org-bucket")
    org = store.add_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER, organization_id="rd-abc123", now_ms=1
    )
    add_trail(
        store, oss_bucket_name="org-bucket", is_organization_trail=True, organization_id=org.organization_id
    )
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    wanted = [event(), event(account=OTHER)]
    store.append(records([*wanted, event(account="1111111111111111")]))
    asyncio.run(engine.run_once())
    keys = list(storage.list("org-bucket"))
    assert sorted(in_files(storage, "org-bucket")) == sorted(e["eventId"] for e in wanted)
    assert {tuple(k.split("/")[2:5]) for k in keys} == {
        ("rd-abc123", ACCOUNT, "cn-hangzhou"),
        ("rd-abc123", OTHER, "cn-hangzhou"),
    }


def test_a_recorded_window_is_rewritten_with_the_same_keys_and_bytes(
    backend_store: EventStore, tmp_path: Path
) -> None:
    """A crash after the window was recorded and before its commit: the same files again."""
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("crash-bucket")
    add_trail(store, oss_bucket_name="crash-bucket")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    store.append(records([event() for _ in range(5)]))

    def crash(_: WindowDelivered) -> None:
        raise RuntimeError("killed before the commit")

    engine.after_window.append(crash)
    asyncio.run(engine.run_once())
    first = {k: storage.get("crash-bucket", k) for k in storage.list("crash-bucket")}
    assert len(first) == 1
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.window_end_seq and "killed" in cp.last_error
    store.append(records([event()]))  # arrives after the window was recorded: the next window
    store.release_lease(f"trail/{ACCOUNT}/trail-one", owner=engine.node_id)  # its lease expired
    again = engine_for(store, storage)  # a new process
    asyncio.run(again.run_once())
    after = {k: storage.get("crash-bucket", k) for k in storage.list("crash-bucket")}
    assert len(after) == 2 and all(after[k] == v for k, v in first.items())
    assert len(in_files(storage, "crash-bucket")) == 6
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.last_error == "" and cp.delivered_events == 6


def test_bucket_gone_then_back_catches_up(backend_store: EventStore, tmp_path: Path) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    add_trail(store, oss_bucket_name="late-bucket")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    store.append(records([event() for _ in range(3)]))
    asyncio.run(engine.run_once())
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and "does not exist" in cp.last_error
    storage.create_bucket("late-bucket")
    store.append(records([event() for _ in range(2)]))
    for state in next(iter(engine._runs.values())).sinks.values():
        state.retry_at = 0
        state.failures = 0
    asyncio.run(engine.run_once())
    assert len(in_files(storage, "late-bucket")) == 5
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.last_error == "" and cp.last_delivery_ms and cp.last_delivery_ms <= now_ms()


def test_stream_records_are_sls_shaped_and_published_once(
    backend_store: EventStore, tmp_path: Path, nats_url: str
) -> None:
    import nats

    store = backend_store
    project = "proj-" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:10]
    add_trail(store, sls_project_arn=f"acs:log:cn-hangzhou:{ACCOUNT}:project/{project}")
    settings = Settings(delivery_window_s=0.2, nats_url=nats_url)
    engine = DeliveryEngine(store, settings, storage=DirectoryStorage(tmp_path), poll_s=0.05)
    asyncio.run(engine.run_once())
    wanted = [event() for _ in range(4)]
    store.append(records(wanted))
    asyncio.run(engine.run_once())
    # A second engine whose checkpoint was lost after publishing: the stream says where it stood.
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="sls")
    assert cp is not None
    store.take_lease(f"trail/{ACCOUNT}/trail-one", owner=engine.node_id, now_ms=now_ms(), ttl_ms=60_000)
    store.save_checkpoint(
        replace(cp, delivered_seq=cp.delivered_seq - 4),
        lease=f"trail/{ACCOUNT}/trail-one",
        owner=engine.node_id,
    )
    store.release_lease(f"trail/{ACCOUNT}/trail-one", owner=engine.node_id)
    store.append(records([event()]))
    again = DeliveryEngine(store, settings, storage=DirectoryStorage(tmp_path), poll_s=0.05)
    asyncio.run(again.run_once())

    async def read() -> list[dict[str, object]]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        info = await js.stream_info(project)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(project, seq)
            assert msg.subject == f"{project}.actiontrail_trail-one"
            out.append(orjson.loads(msg.data))
        await js.delete_stream(project)
        await nc.close()
        return out

    got = asyncio.run(read())
    assert len(got) == 5
    assert all(r["__topic__"] == "actiontrail_audit_event" for r in got)
    bodies = {e.event.event_id: e.event.body for e in store.read_log(after_seq=0, limit=100)}
    events = [orjson.loads(r["event"]) for r in got]  # type: ignore[arg-type]
    assert [e["eventId"] for e in events[:4]] == [e["eventId"] for e in wanted]
    assert all(str(r["event"]).encode() == bodies[e["eventId"]] for r, e in zip(got, events, strict=True))


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_delivered_files_restore_the_events_byte_for_byte(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    """`trailhouse ingest` reads a delivered tree (a directory or an S3 prefix) back into another store."""
    import os
    import subprocess
    import sys

    from trailhouse.storage import open_store

    source = open_store(f"sqlite:///{tmp_path}/source.db")
    env = dict(os.environ)
    if where == "directory":
        storage: object = DirectoryStorage(tmp_path / "oss")
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        storage = S3Storage(endpoint)
        env["TRAILHOUSE_OSS_ENDPOINT"] = endpoint
    bucket = "restore-" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:8]
    storage.create_bucket(bucket)  # type: ignore[attr-defined]
    add_trail(source, oss_bucket_name=bucket, oss_key_prefix="restore/here")
    engine = engine_for(source, storage, max_file_events=7)
    asyncio.run(engine.run_once())
    for region in ("cn-hangzhou", "cn-beijing", "cn-hangzhou"):
        source.append(records([event(region=region, name=f"Op{i}") for i in range(10)]))
        asyncio.run(engine.run_once())
        time.sleep(1.05)  # the next windows are a second later: file names order them
    expected = [e.event.body for e in source.read_log(after_seq=0, limit=1000)]
    source.close()
    assert len(list(storage.list(bucket))) >= 6  # type: ignore[attr-defined]
    target = f"sqlite:///{tmp_path}/target.db"
    where_from = str(tmp_path / "oss" / bucket) if where == "directory" else f"s3://{bucket}/restore/"
    done = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "ingest", "--db", target, "--json", where_from],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout)["accepted"] == 30
    restored = open_store(target)
    try:
        got = [e.event.body for e in restored.read_log(after_seq=0, limit=1000)]
    finally:
        restored.close()
    assert got == expected


def test_history_job_backfills_the_window_once(backend_store: EventStore, tmp_path: Path) -> None:
    from trailhouse.model.trail import HistoryJob, HistoryJobStatus

    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("history-bucket")
    old = [event() for _ in range(12)]
    store.append(records([*old, event(account=OTHER)]))
    add_trail(store, oss_bucket_name="history-bucket")
    engine = engine_for(store, storage, max_file_events=5)
    asyncio.run(engine.run_once())
    assert in_files(storage, "history-bucket") == []  # the live delivery starts at the head
    now = now_ms()
    job = store.create_history_job(
        HistoryJob(
            0,
            ACCOUNT,
            "trail-one",
            "cn-hangzhou",
            HistoryJobStatus.INITIALIZING,
            now - 90 * 86_400_000,
            now + 1,
            "",
            now,
            now,
        ),
        max_open_per_account=1,
    )
    assert job is not None
    live = [event() for _ in range(3)]
    store.append(records(live))
    engine.history._next_refresh = 0
    asyncio.run(engine.run_once())
    done = store.get_history_job(account_id=ACCOUNT, job_id=job.job_id)
    assert done is not None and done.status is HistoryJobStatus.COMPLETE and done.error == ""
    got = in_files(storage, "history-bucket")
    assert sorted(got) == sorted(e["eventId"] for e in [*old, *live])
    assert len(got) == len(set(got))


def test_stop_logging_still_delivers_the_open_window(backend_store: EventStore, tmp_path: Path) -> None:
    from trailhouse.model.trail import TrailStatus

    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("stop-bucket")
    trail = add_trail(store, oss_bucket_name="stop-bucket")
    engine = DeliveryEngine(store, Settings(delivery_window_s=600), storage=storage, poll_s=0.05)

    async def scenario() -> None:
        await engine.tick()  # the run starts at the head
        wanted = [event() for _ in range(3)]
        store.append(records(wanted))
        await engine.tick()
        await engine.tick()  # the window is open for ten minutes: nothing written yet
        assert in_files(storage, "stop-bucket") == []
        store.update_trail(trail.with_status(TrailStatus.DISABLE, now_ms()))
        engine._next_refresh = 0
        await engine.tick()  # StopLogging seen: the window closes and is written
        engine._next_refresh = 0
        await engine.tick()
        assert not engine._runs  # drained, let go
        assert sorted(in_files(storage, "stop-bucket")) == sorted(e["eventId"] for e in wanted)
        store.append(records([event()]))  # after the stop: not delivered
        engine._next_refresh = 0
        await engine.tick()
        assert len(in_files(storage, "stop-bucket")) == 3
        await engine.close()

    asyncio.run(scenario())


def test_a_backlog_is_split_into_files_of_at_most_max_file_events(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("split-bucket")
    add_trail(store, oss_bucket_name="split-bucket")
    engine = engine_for(store, storage, max_file_events=400)
    asyncio.run(engine.run_once())
    for _ in range(3):
        store.append(records([event() for _ in range(500)]))
    asyncio.run(engine.run_once())
    counts = [
        len(orjson.loads(gzip.decompress(storage.get("split-bucket", k))))
        for k in storage.list("split-bucket")
    ]
    assert sum(counts) == 1500 and max(counts) <= 400 and len(counts) == 4
    assert len(set(in_files(storage, "split-bucket"))) == 1500


def test_a_backfill_counts_as_a_delivery_in_the_trails_status(
    backend_store: EventStore, tmp_path: Path
) -> None:
    """GetTrailStatus must not say 'never delivered' of a trail whose files so far are its backfill."""
    from trailhouse.delivery.status import trail_delivery_status
    from trailhouse.model.trail import HistoryJob, HistoryJobStatus

    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("backfill-bucket")
    store.append(records([event() for _ in range(4)]))
    trail = add_trail(store, oss_bucket_name="backfill-bucket")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())

    def status() -> int | None:
        current = store.get_trail(account_id=ACCOUNT, name=trail.name)
        assert current is not None
        got = trail_delivery_status(store, storage.bucket_status, trail=current, stream_configured=False)
        return got.oss.last_delivery_ms

    assert status() is None  # nothing new since the trail started, no backfill yet
    now = now_ms()
    job = store.create_history_job(
        HistoryJob(
            0,
            ACCOUNT,
            trail.name,
            "cn-hangzhou",
            HistoryJobStatus.INITIALIZING,
            now - 86_400_000,
            now + 1,
            "",
            now,
            now,
        ),
        max_open_per_account=1,
    )
    assert job is not None
    engine.history._next_refresh = 0
    asyncio.run(engine.run_once())
    done = store.get_history_job(account_id=ACCOUNT, job_id=job.job_id)
    assert (
        done is not None and done.status is HistoryJobStatus.COMPLETE and in_files(storage, "backfill-bucket")
    )
    assert status() == done.finished_ms
