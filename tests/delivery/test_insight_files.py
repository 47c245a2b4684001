"""Insights records in a trail's files and stream, the engine in process: a real store (SQLite file,
the local PostgreSQL), a directory of buckets, a moto S3 server and the machine's NATS server.

Records are stored the way the detector stores them (``commit_insights``, records built by
``insight_record``); tests/delivery/test_insight_processes.py has the server's detector raise them."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from trailhouse.delivery.engine import DeliveryEngine
from trailhouse.delivery.object_storage import DirectoryStorage, S3Storage
from trailhouse.delivery.status import InsightDeliveryStatus, trail_delivery_status
from trailhouse.model.delivery import Sink
from trailhouse.model.insights import StoredInsight
from trailhouse.model.times import now_ms
from trailhouse.model.trail import HistoryJob, HistoryJobStatus
from trailhouse.service.insights.record import Statistics, insight_record
from trailhouse.settings import Settings
from trailhouse.storage.base import DetectorCheckpoint, EventStore

from ._events import ACCOUNT, INSIGHTS, OTHER, add_trail, event, in_files, records

#: ActionTrail's documented path with ``Actiontrail-Insight`` as the EventType.
INSIGHT_KEY = re.compile(
    r"^(?P<prefix>(?:[^/]+/)*?)AliyunLogs/Actiontrail-Insight/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/"
    r"Actiontrail_(?P=region)_(?P<stamp>\d{14})_1002_(?P<count>\d+)_(?P<size>\d+)_(?P<md5>[0-9a-f]{32})\.gz$"
)


def engine_for(store: EventStore, storage: object, **kw: Any) -> DeliveryEngine:
    return DeliveryEngine(store, Settings(delivery_window_s=0.2), storage=storage, poll_s=0.05, **kw)  # type: ignore[arg-type]


def raise_insight(
    store: EventStore,
    *,
    account: str = ACCOUNT,
    kind: str = "TrailConcealmentInsight",
    region: str = "cn-hangzhou",
    states: tuple[str, ...] = ("Start", "End"),
    obj: str = "",
) -> list[StoredInsight]:
    """Store an insight's records as the detector does (its own lease, one transaction)."""
    obj = obj or f"audit-{uuid.uuid4().hex[:6]}"
    made = [
        insight_record(
            account_id=account,
            insight_type=kind,
            insight_object=obj,
            anchor=obj,
            state=state,
            time_ms=now_ms(),
            region=region,
            statistics=Statistics(1, 1, 0, 43200, 1),
            attributions=(),
            triggers=(f"ev-{obj}",),
            explanation=f"{kind} on {obj}",
            trigger=None,
        )
        for state in states
    ]
    assert store.take_detector_lease(detector="test", owner="t", now_ms=now_ms(), ttl_ms=60_000)
    cp = store.detector_checkpoint(detector="test")
    store.commit_insights(
        made, detector="test", owner="t", checkpoint=DetectorCheckpoint(cp.watermark + 1 if cp else 1, b"")
    )
    return made


def insight_files(storage: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    return {
        key: orjson.loads(gzip.decompress(storage.get(bucket, key)))
        for key in storage.list(bucket)
        if INSIGHTS in key
    }


def delivered_ids(storage: Any, bucket: str) -> list[str]:
    return [r["eventId"] for recs in insight_files(storage, bucket).values() for r in recs]


def select(store: EventStore, trail: str, *types: str, account: str = ACCOUNT) -> None:
    assert store.put_insight_selectors(
        account_id=account, trail_name=trail, selectors=list(types), now_ms=now_ms()
    )


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_a_trail_delivers_its_selected_insights_once_in_the_documented_layout(
    backend_store: EventStore, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    store = backend_store
    storage = (
        DirectoryStorage(tmp_path / "oss")
        if where == "directory"
        else S3Storage(request.getfixturevalue("moto_endpoint"))
    )
    bucket = f"ins-{where}-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(bucket)
    raise_insight(store)  # before the trail logs: not delivered
    add_trail(
        store, oss_bucket_name=bucket, oss_key_prefix="audit/logs", trail_region="cn-hangzhou,cn-beijing"
    )
    select(store, "trail-one", "TrailConcealmentInsight", "PolicyChangeInsight")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())  # the run starts at the account's newest record
    wanted = raise_insight(store) + raise_insight(store, kind="PolicyChangeInsight", region="cn-beijing")
    raise_insight(store, kind="IpInsight")  # a type the trail did not select
    raise_insight(store, region="eu-central-1")  # a region the trail does not cover
    raise_insight(store, account=OTHER)  # another account
    start_only = raise_insight(store, kind="PolicyChangeInsight", states=("Start",))
    store.append(records([event()]))
    asyncio.run(engine.run_once())
    end_later = raise_insight(  # its End, stored later: in a later file
        store, kind="PolicyChangeInsight", states=("End",), obj=start_only[0].insight_object
    )
    asyncio.run(engine.run_once())
    asyncio.run(engine_for(store, storage).run_once())  # a new engine (a restart) delivers nothing again

    files = insight_files(storage, bucket)
    for key, recs in files.items():
        m = INSIGHT_KEY.match(key)
        assert m, key
        data = storage.get(bucket, key)
        assert m["prefix"] == "audit/logs/"
        assert int(m["count"]) == len(recs) and int(m["size"]) == len(data)
        assert m["md5"] == hashlib.md5(data).hexdigest()
        assert {r["acsRegion"] for r in recs} == {m["region"]}
        assert f"{m['y']}{m['m']}{m['d']}" == m["stamp"][:8]
    got = [r for key in sorted(files) for r in files[key]]
    expected = wanted + start_only + end_later
    assert sorted(r["eventId"] for r in got) == sorted(i.insight_id for i in expected)
    # Each record is the stored JSON byte for byte: the spec's record shape, Start and End as stored.
    bodies = {i.insight_id: i.body for i in expected}
    assert all(orjson.dumps(r) == bodies[r["eventId"]] for r in got)
    first = got[0]
    assert first["eventType"] == "ActionTrailInsight" and first["eventCategory"] == "Insight"
    assert set(first["insightDetails"]) == {"state", "insightType", "insightObject", "insightContext"}
    assert [r["insightDetails"]["state"] for r in got if r["sharedEventId"] == start_only[0].shared_id] == [
        "Start",
        "End",
    ]
    # The event files are untouched by the insight files, and the status reads the events' checkpoint.
    assert len(in_files(storage, bucket)) == 1
    trail = store.get_trail(account_id=ACCOUNT, name="trail-one")
    assert trail is not None
    status = trail_delivery_status(store, storage.bucket_status, trail=trail, stream_configured=False)
    assert status.oss.delivered_events == 1 and status.oss.behind == 0 and status.oss.last_error == ""
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.INSIGHT_OSS.value)
    assert cp is not None and cp.delivered_events == len(expected) and not cp.window_end_seq


def test_no_insight_files_without_selectors_or_for_an_organization_trail(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    for b in ("plain-bucket", "emptied-bucket", "org-bucket"):
        storage.create_bucket(b)
    store.add_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER, organization_id="rd-ins", now_ms=now_ms()
    )
    add_trail(store, "trail-plain", oss_bucket_name="plain-bucket")
    add_trail(store, "trail-emptied", oss_bucket_name="emptied-bucket")
    select(store, "trail-emptied", "TrailConcealmentInsight")
    select(store, "trail-emptied")  # selectors put back to none: insights off for the trail
    add_trail(
        store, "trail-org", oss_bucket_name="org-bucket", is_organization_trail=True, organization_id="rd-ins"
    )
    select(store, "trail-org", "TrailConcealmentInsight")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    raise_insight(store)
    raise_insight(store, account=OTHER)
    store.append(records([event(), event(account=OTHER)]))
    asyncio.run(engine.run_once())
    for b in ("plain-bucket", "emptied-bucket", "org-bucket"):
        assert insight_files(storage, b) == {}, b
        assert in_files(storage, b)  # the events were delivered
    assert all(
        cp.sink in ("oss", "sls") for cp in store.list_checkpoints(account_id=ACCOUNT, trail_name="trail-org")
    )


def test_a_recorded_insight_window_is_rewritten_with_the_same_keys_and_bytes(
    backend_store: EventStore, tmp_path: Path
) -> None:
    """A crash after the window was recorded and before its commit: the same files again, once."""
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("crash-bucket")
    add_trail(store, oss_bucket_name="crash-bucket")
    select(store, "trail-one", "TrailConcealmentInsight")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    made = raise_insight(store) + raise_insight(store)
    asyncio.run(engine.run_once())
    before = {k: storage.get("crash-bucket", k) for k in insight_files(storage, "crash-bucket")}
    assert len(before) == 1
    # Put the checkpoint back to "window recorded, not committed", as a kill -9 would leave it.
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.INSIGHT_OSS.value)
    assert cp is not None
    lease = f"trail/{ACCOUNT}/trail-one"
    store.release_lease(lease, owner=engine.node_id)
    store.take_lease(lease, owner="crashed", now_ms=now_ms(), ttl_ms=60_000)
    first_ref = cp.delivered_seq - len(made)
    assert store.save_checkpoint(
        replace(cp, delivered_seq=first_ref, window_end_seq=cp.delivered_seq, delivered_events=0),
        lease=lease,
        owner="crashed",
    )
    store.release_lease(lease, owner="crashed")
    asyncio.run(engine_for(store, storage).run_once())
    after = {k: storage.get("crash-bucket", k) for k in insight_files(storage, "crash-bucket")}
    assert after == before
    assert sorted(delivered_ids(storage, "crash-bucket")) == sorted(i.insight_id for i in made)


def test_a_history_job_and_a_new_run_are_not_confused_by_the_insight_checkpoint(
    backend_store: EventStore, tmp_path: Path
) -> None:
    """The insight checkpoint counts refs: a history job's end and a new destination's start are
    the events' seqs all the same."""
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("hist-bucket")
    store.append(records([event() for _ in range(3)]))
    for _ in range(5):  # refs well above the log's seqs
        raise_insight(store)
    add_trail(store, oss_bucket_name="hist-bucket")
    select(store, "trail-one", "TrailConcealmentInsight")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    head = store.newest_seq()
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.OSS.value)
    assert cp is not None and cp.run.endswith(f"@{head}")
    now = now_ms()
    job = store.create_history_job(
        HistoryJob(
            0,
            ACCOUNT,
            "trail-one",
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
    assert done is not None and done.status is HistoryJobStatus.COMPLETE, done
    assert f"upto={head}" in done.checkpoint
    assert sorted(in_files(storage, "hist-bucket")) == sorted(
        e.event.event_id for e in store.read_log(after_seq=0, limit=10)
    )


def test_insights_on_the_stream_subject_of_their_own(
    backend_store: EventStore, tmp_path: Path, nats_url: str
) -> None:
    import nats

    store = backend_store
    project = "ins-" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:10]
    add_trail(store, sls_project_arn=f"acs:log:cn-hangzhou:{ACCOUNT}:project/{project}")
    select(store, "trail-one", "TrailConcealmentInsight")
    settings = Settings(delivery_window_s=0.2, nats_url=nats_url)
    engine = DeliveryEngine(store, settings, storage=DirectoryStorage(tmp_path), poll_s=0.05)
    asyncio.run(engine.run_once())
    made = raise_insight(store)
    raise_insight(store, account=OTHER)
    store.append(records([event()]))
    asyncio.run(engine.run_once())
    # A checkpoint lost after publishing: the subject's last record says where delivery stood.
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.INSIGHT_STREAM.value)
    assert cp is not None
    lease = f"trail/{ACCOUNT}/trail-one"
    assert store.save_checkpoint(
        replace(cp, delivered_seq=cp.delivered_seq - 2), lease=lease, owner=engine.node_id
    )
    store.release_lease(lease, owner=engine.node_id)
    made += raise_insight(store)
    asyncio.run(DeliveryEngine(store, settings, storage=DirectoryStorage(tmp_path), poll_s=0.05).run_once())

    async def read() -> list[tuple[str, dict[str, Any]]]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        info = await js.stream_info(project)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(project, seq)
            out.append((msg.subject, orjson.loads(msg.data)))
        await js.delete_stream(project)
        await nc.close()
        return out

    got = asyncio.run(read())
    insights = [r for s, r in got if s == f"{project}.actiontrail_trail-one.insight"]
    events = [r for s, r in got if s == f"{project}.actiontrail_trail-one"]
    assert len(events) == 1 and len(got) == len(insights) + 1
    assert all(r["__topic__"] == "actiontrail_insight_event" for r in insights)
    assert [str(r["event"]).encode() for r in insights] == [i.body for i in made]


@pytest.mark.parametrize("where", ["directory", "s3"])
def test_ingest_of_a_delivered_tree_leaves_the_insight_files_out(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    """`trailhouse ingest` of a trail's bucket restores its events, never its insight records."""
    import os
    import subprocess
    import sys

    from trailhouse.service.ingest import is_event_file
    from trailhouse.storage import open_store

    assert not is_event_file("p/AliyunLogs/Actiontrail-Insight/cn-hangzhou/2026/12/06/Actiontrail_x.gz")
    assert is_event_file("p/AliyunLogs/Actiontrail/cn-hangzhou/2026/12/06/Actiontrail_x.gz")
    source = open_store(f"sqlite:///{tmp_path}/source.db")
    env = dict(os.environ)
    storage: Any
    if where == "directory":
        storage = DirectoryStorage(tmp_path / "oss")
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        storage = S3Storage(endpoint)
        env["TRAILHOUSE_OSS_ENDPOINT"] = endpoint
    bucket = "tree-" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:8]
    storage.create_bucket(bucket)
    add_trail(source, oss_bucket_name=bucket, oss_key_prefix="tree/here")
    select(source, "trail-one", "TrailConcealmentInsight")
    engine = engine_for(source, storage)
    asyncio.run(engine.run_once())
    raise_insight(source)
    source.append(records([event() for _ in range(4)]))
    asyncio.run(engine.run_once())
    expected = [e.event.body for e in source.read_log(after_seq=0, limit=100)]
    source.close()
    assert insight_files(storage, bucket) and in_files(storage, bucket)
    target = f"sqlite:///{tmp_path}/target.db"
    where_from = str(tmp_path / "oss" / bucket) if where == "directory" else f"s3://{bucket}/tree/"
    done = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "ingest", "--db", target, "--json", where_from],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout)["accepted"] == 4
    restored = open_store(target)
    try:
        assert [e.event.body for e in restored.read_log(after_seq=0, limit=100)] == expected
    finally:
        restored.close()


def test_a_stream_added_to_a_logging_trail_delivers_the_runs_insights_from_its_start(
    backend_store: EventStore, tmp_path: Path, nats_url: str
) -> None:
    """As for events: every insight destination of a logging run starts at the run's first ref."""
    import nats

    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("added-bucket")
    trail = add_trail(store, oss_bucket_name="added-bucket")
    select(store, "trail-one", "TrailConcealmentInsight")
    settings = Settings(delivery_window_s=0.2, nats_url=nats_url)
    engine = DeliveryEngine(store, settings, storage=storage, poll_s=0.05)
    asyncio.run(engine.run_once())
    made = raise_insight(store)
    asyncio.run(engine.run_once())
    assert sorted(delivered_ids(storage, "added-bucket")) == sorted(i.insight_id for i in made)
    project = "add-" + hashlib.md5(str(tmp_path).encode()).hexdigest()[:10]
    arn = f"acs:log:cn-hangzhou:{ACCOUNT}:project/{project}"
    assert store.update_trail(replace(trail, sls_project_arn=arn)) is None
    engine._next_refresh = 0
    asyncio.run(engine.run_once())
    oss = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.INSIGHT_OSS.value)
    sls = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink=Sink.INSIGHT_STREAM.value)
    assert oss is not None and sls is not None and oss.run == sls.run

    async def read() -> list[bytes]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        info = await js.stream_info(project)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(project, seq)
            out.append(str(orjson.loads(msg.data)["event"]).encode())
        await js.delete_stream(project)
        await nc.close()
        return out

    assert asyncio.run(read()) == [i.body for i in made]


def test_a_failing_insight_delivery_shows_in_the_trails_status_until_it_recovers(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store = backend_store
    storage = DirectoryStorage(tmp_path / "oss")
    bucket = f"ins-fail-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(bucket)
    add_trail(store, oss_bucket_name=bucket)
    select(store, "trail-one", "TrailConcealmentInsight")
    engine = engine_for(store, storage)
    asyncio.run(engine.run_once())
    trail = store.get_trail(account_id=ACCOUNT, name="trail-one")
    assert trail is not None

    def status() -> Any:
        return trail_delivery_status(store, storage.bucket_status, trail=trail, stream_configured=False)

    assert status().insights == InsightDeliveryStatus(("TrailConcealmentInsight",), 0, None, "")
    (tmp_path / "oss" / bucket).rename(tmp_path / "oss" / "moved-away")  # the bucket is gone
    raise_insight(store)
    asyncio.run(engine.run_once())
    failing = status()
    assert failing.insights.last_error.startswith("oss: ") and failing.insights.delivered_records == 0
    assert failing.oss.last_error == ""  # no event to deliver: the events' side has not failed
    (tmp_path / "oss" / "moved-away").rename(tmp_path / "oss" / bucket)
    deadline = time.monotonic() + 15
    while (recovered := status()).insights.last_error and time.monotonic() < deadline:
        time.sleep(0.2)  # the failed destination retries after its back-off (1 s)
        asyncio.run(engine.run_once())
    assert recovered.insights.last_error == "" and recovered.insights.delivered_records == 2
    assert recovered.insights.last_delivery_ms is not None
