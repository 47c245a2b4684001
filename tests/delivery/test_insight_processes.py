"""Insights in a trail's files, end to end: a real `trailhouse serve` process whose own detector raises
TrailConcealmentInsight from ingested StopLogging calls, and whose delivery writes them into the
trail's ``Actiontrail-Insight`` files (a directory of buckets, or a moto S3 server), across kill -9.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.reliability._harness import Creds, ServeProcess, make_creds, new_master_key
from trailhouse.delivery.object_storage import DirectoryStorage, ObjectStorage, S3Storage
from trailhouse.model.insights import InsightQuery
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.insights.detector import DETECTOR_NAME
from trailhouse.storage import open_store

from ._events import INSIGHTS, add_trail

pytestmark = pytest.mark.timeout(300)

KIND = "TrailConcealmentInsight"


def stop_logging(creds: Creds, who: str) -> dict[str, Any]:
    """A StopLogging by an identity that never made one: a TrailConcealmentInsight by the rule."""
    return {
        "eventId": f"stop-{uuid.uuid4()}",
        "eventVersion": "1",
        "eventTime": format_wire_time(now_ms()),
        "eventName": "StopLogging",
        "eventType": "ApiCall",
        "eventRW": "Write",
        "eventSource": "actiontrail.aliyuncs.com",
        "serviceName": "Actiontrail",
        "sourceIpAddress": "203.0.113.9",
        "acsRegion": "cn-hangzhou",
        "requestId": str(uuid.uuid4()),
        "requestParameters": {"Name": "audit"},
        "userIdentity": {
            "type": "ram-user",
            "accountId": creds.account_id,
            "principalId": "1",
            "userName": who,
            "accessKeyId": f"LTAI{uuid.uuid4().hex[:16]}",
        },
    }


def ingest(server: ServeProcess, creds: Creds, events: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{server.url}/api/v1/events", json=events, headers=creds.bearer, timeout=30)
    assert r.status_code == 200, r.text


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.3)


def stored(db_url: str, account: str) -> list[bytes]:
    """The account's insight records in the store (the source of truth), oldest first."""
    store = open_store(db_url)
    try:
        found = store.find_insights(
            account_id=account, query=InsightQuery(0, now_ms() + 86_400_000), after=None, limit=1000
        )
    finally:
        store.close()
    return [i.body for _, i in reversed(found)]


def delivered(storage: ObjectStorage, bucket: str) -> list[tuple[str, bytes]]:
    """Every record of the bucket's insight files (files in key order, which is window time order)."""
    return [
        (key, orjson.dumps(record))
        for key in storage.list(bucket)
        if INSIGHTS in key
        for record in orjson.loads(gzip.decompress(storage.get(bucket, key)))
    ]


def caught_up(db_url: str, account: str, trail: str) -> bool:
    store = open_store(db_url)
    try:
        cp = store.get_checkpoint(account_id=account, trail_name=trail, sink="oss-insight")
        last = store.last_insight_ref(account_id=account)
    finally:
        store.close()
    return cp is not None and cp.delivered_seq >= last and not cp.window_end_seq


def run_scenario(db_url: str, tmp_path: Path, storage: ObjectStorage, env: dict[str, str]) -> None:
    key = new_master_key()
    creds, other = make_creds(db_url, key), make_creds(db_url, key)
    on, off = f"ins-on-{uuid.uuid4().hex[:8]}", f"ins-off-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(on)
    storage.create_bucket(off)
    store = open_store(db_url)
    try:
        add_trail(store, "trail-insights", account_id=creds.account_id, oss_bucket_name=on)
        assert store.put_insight_selectors(
            account_id=creds.account_id, trail_name="trail-insights", selectors=[KIND], now_ms=now_ms()
        )
        add_trail(store, "trail-plain", account_id=creds.account_id, oss_bucket_name=off)  # no selectors
        for account in (creds.account_id, other.account_id):
            store.set_insight_type(account_id=account, insight_type=KIND, enabled=True, now_ms=now_ms())
    finally:
        store.close()
    server = ServeProcess(db_url, tmp_path, key, env).start()
    try:

        def detecting() -> bool:
            s = open_store(db_url)
            try:
                return s.detector_checkpoint(detector=DETECTOR_NAME) is not None
            finally:
                s.close()

        wait_for("the server's detector", detecting)
        time.sleep(3)  # the trails' delivery runs start (at the log head and the newest insight)
        ingest(server, creds, [stop_logging(creds, "mallory")])
        ingest(server, other, [stop_logging(other, "mallory")])
        wait_for("a first insight file", lambda: len(delivered(storage, on)) == 2)
        # kill -9, then more insights while it is down are delivered by the restarted server, once.
        server.kill9()
        server.start()
        ingest(server, creds, [stop_logging(creds, "trudy"), stop_logging(creds, "eve")])
        wait_for("the insights after the restart", lambda: len(stored(db_url, creds.account_id)) == 6)
        server.kill9()
        server.start()
        wait_for("delivery catching up", lambda: caught_up(db_url, creds.account_id, "trail-insights"))
        time.sleep(2)  # and nothing more comes
    finally:
        server.stop()

    records = delivered(storage, on)
    expected = stored(db_url, creds.account_id)
    assert len(expected) == 6  # three insights, a Start and an End each
    assert sorted(body for _, body in records) == sorted(expected)  # exactly once, byte for byte
    for key, body in records:
        doc = orjson.loads(body)
        assert f"AliyunLogs/Actiontrail-Insight/{doc['acsRegion']}/" in key
        assert key.rsplit("/", 1)[1].startswith(f"Actiontrail_{doc['acsRegion']}_")
        assert doc["eventType"] == "ActionTrailInsight" and doc["eventCategory"] == "Insight"
        assert doc["recipientAccountId"] == creds.account_id
        assert doc["insightDetails"]["insightType"] == KIND
        assert {"state", "insightObject", "insightContext"} <= set(doc["insightDetails"])
        assert {"eventId", "eventTime", "acsRegion", "sharedEventId", "eventVersion"} <= set(doc)
    pairs: dict[str, list[str]] = {}
    for _, body in records:
        doc = orjson.loads(body)
        pairs.setdefault(doc["sharedEventId"], []).append(doc["insightDetails"]["state"])
    assert sorted(sorted(states) for states in pairs.values()) == [["End", "Start"]] * 3
    assert len(stored(db_url, other.account_id)) == 2  # the other account's insight was raised …
    other_ids = {orjson.loads(b)["eventId"] for b in stored(db_url, other.account_id)}
    assert not other_ids & {orjson.loads(b)["eventId"] for _, b in records}  # … and not delivered here
    assert delivered(storage, off) == []  # the trail without insight selectors
    assert [k for k in storage.list(off) if "AliyunLogs/Actiontrail/" in k]  # has its event files

    # `trailhouse trails status` reports the events' delivery, not confused by the insight files.
    cli_env = {**os.environ, **env, "TRAILHOUSE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "trails", "status", "trail-insights"]
        + ["--account", creds.account_id, "--db", db_url, "--json"],
        env=cli_env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    (row,) = orjson.loads(done.stdout)
    assert row["ossBucketStatus"] is True and row["latestDeliveryError"] == ""
    assert row["ossDeliveredEvents"] == 3 and row["behindEvents"] == 0
    # … and the insight records' delivery beside it.
    assert row["insightSelectors"] == [KIND] and row["insightDeliveredRecords"] == len(records)
    assert row["latestInsightDeliveryError"] == "" and row["latestInsightDeliveryTime"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "TRAILHOUSE_OSS_DIR": str(tmp_path / "oss"),
        "TRAILHOUSE_DELIVERY_WINDOW_S": "1",
        "TRAILHOUSE_DELIVERY_LEASE_S": "3",
        "TRAILHOUSE_INSIGHTS_DETECTOR": "on",
        "TRAILHOUSE_INSIGHTS_LEASE_S": "3",  # a restarted server detects again 3 s after a kill -9
    }


@pytest.fixture
def no_nats(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TRAILHOUSE_NATS_URL", raising=False)
    yield


def test_a_servers_insights_reach_the_trails_directory_bucket_once(
    backend_url: str, tmp_path: Path, no_nats: None
) -> None:
    run_scenario(backend_url, tmp_path, DirectoryStorage(tmp_path / "oss"), _env(tmp_path))


def test_a_servers_insights_reach_the_trails_s3_bucket_once(
    tmp_path: Path, moto_endpoint: str, no_nats: None
) -> None:
    env = _env(tmp_path) | {"TRAILHOUSE_OSS_ENDPOINT": moto_endpoint}
    run_scenario(f"sqlite:///{tmp_path / 's3.db'}", tmp_path, S3Storage(moto_endpoint), env)
