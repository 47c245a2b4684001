"""GetTrailStatus through the official SDKs on a real server whose engine delivers to a directory of
buckets and the machine's NATS server: the answer follows what delivery really did."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port, run_server
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.settings import Settings

from .conftest import SDK_VARIANTS, V2017, SdkVariant, make_sdk_client, new_access_key
from .test_trails_sdk import WIRE_TIME, TrailApi, _close_sdk_sessions

NATS_URL = os.environ.get("TRAILHOUSE_TEST_NATS", "nats://127.0.0.1:4222")
VARIANTS = {v.id: v for v in SDK_VARIANTS}
MAIN = [VARIANTS["tea2017-v3"], VARIANTS["tea2020-v3"], VARIANTS["core2020-v1"]]


@pytest.fixture(scope="module")
def status_server(e2e_backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    host, port = NATS_URL.removeprefix("nats://").split(":")
    with socket.socket() as s:
        if s.connect_ex((host, int(port))) != 0:
            pytest.skip(f"SKIPPED LOUDLY: NATS at {NATS_URL} is not reachable")
    data = tmp_path_factory.mktemp("status-data")
    settings = Settings(
        db_url=e2e_backend_url,
        port=free_port(),
        data_dir=str(data),
        throttle_lookup_events=0,
        throttle_access_key_usage=0,
        throttle_trails=0,
        nats_url=NATS_URL,
        delivery_window_s=0.5,
    )
    with run_server(settings) as server:
        yield server
    _close_sdk_sessions(server.port)


@pytest.fixture
def api(status_server: LiveServer) -> Callable[[SdkVariant], TrailApi]:
    def make(variant: SdkVariant) -> TrailApi:
        account = str(1_000_000_000_000_000 + uuid.uuid4().int % 10**15)
        key = new_access_key(status_server, account)
        return TrailApi(make_sdk_client(variant, status_server, key.key.access_key_id, key.secret), account)

    return make


def _ingest(server: LiveServer, account: str, n: int) -> None:
    server.store.append(
        [
            event_from_mapping(
                {
                    "eventId": str(uuid.uuid4()),
                    "eventTime": format_wire_time(now_ms()),
                    "eventName": "RunInstances",
                    "eventRW": "Write",
                    "acsRegion": "cn-hangzhou",
                    "serviceName": "Ecs",
                    "userIdentity": {"type": "root-account", "accountId": account},
                }
            )
            for _ in range(n)
        ]
    )


def _until(check: Callable[[], dict[str, Any]], ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = check()
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


@pytest.mark.parametrize("variant", MAIN, ids=[v.id for v in MAIN])
def test_status_tells_what_delivery_did(
    variant: SdkVariant, api: Callable[[SdkVariant], TrailApi], status_server: LiveServer
) -> None:
    client = api(variant)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    buckets = Path(str(status_server.settings.data_dir)) / "oss"
    (buckets / bucket).mkdir(parents=True)
    project = f"p-{uuid.uuid4().hex[:10]}"
    client(
        "CreateTrail",
        Name="status-trail",
        OssBucketName=bucket,
        SlsProjectArn=f"acs:log:cn-hangzhou:{client.account_id}:project/{project}",
    )
    fresh = client("GetTrailStatus", Name="status-trail")
    assert (
        fresh["IsLogging"] is False
        and fresh["LatestDeliveryTime"] == ""
        and fresh["LatestDeliveryError"] == ""
    )
    assert fresh["StartLoggingTime"] == ""
    client("StartLogging", Name="status-trail")
    time.sleep(3)  # the engine picks the trail up (it refreshes the trail list every 2 s)
    _ingest(status_server, client.account_id, 4)
    status = _until(
        lambda: client("GetTrailStatus", Name="status-trail"),
        lambda s: (
            bool(s["LatestDeliveryTime"])
            and (variant.version == V2017 or bool(s["LatestDeliveryLogServiceTime"]))
        ),
    )
    assert status["IsLogging"] is True and WIRE_TIME.match(status["StartLoggingTime"])
    assert WIRE_TIME.match(status["LatestDeliveryTime"]) and status["LatestDeliveryError"] == ""
    assert len(list((buckets / bucket).rglob("Actiontrail_*.gz"))) == 1
    if variant.version == V2017:
        assert set(status) == {
            "RequestId", "IsLogging", "LatestDeliveryTime", "LatestDeliveryError", "StartLoggingTime",
            "StopLoggingTime",
        }  # fmt: skip
    else:
        assert status["OssBucketStatus"] is True and status["SlsLogStoreStatus"] is True
        assert WIRE_TIME.match(status["LatestDeliveryLogServiceTime"])
        assert status["LatestDeliveryLogServiceError"] == ""
    # The bucket goes away: the status says so, and the next window's failure is its error.
    shutil.rmtree(buckets / bucket)
    _ingest(status_server, client.account_id, 2)
    broken = _until(
        lambda: client("GetTrailStatus", Name="status-trail"), lambda s: bool(s["LatestDeliveryError"])
    )
    assert "does not exist" in broken["LatestDeliveryError"]
    if variant.version != V2017:
        assert broken["OssBucketStatus"] is False and broken["SlsLogStoreStatus"] is True
    error = client.error("GetTrailStatus", Name="no-such-trail")
    assert error.code == "TrailNotFoundException" and error.status == 404
    client("DeleteTrail", Name="status-trail")
