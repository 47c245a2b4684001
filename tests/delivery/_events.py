"""Events and trails for delivery tests."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import orjson

from trailhouse.model.event import EventRecord, event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.model.trail import EventRW, Trail, TrailStatus
from trailhouse.storage.base import EventStore

ACCOUNT = "1234567890123456"
OTHER = "6543210987654321"
#: In a delivered key: a digest, not a file of events.
DIGESTS = "AliyunLogs/Actiontrail-Digest/"
#: In a delivered key: a file of Insights records, not of events.
INSIGHTS = "AliyunLogs/Actiontrail-Insight/"


def event(
    *,
    account: str = ACCOUNT,
    region: str = "cn-hangzhou",
    rw: str = "Write",
    category: str = "Management",
    service: str = "Ecs",
    name: str = "RunInstances",
) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()).upper(),
        "eventVersion": 1,
        "eventSource": "ecs.aliyuncs.com",
        "eventTime": format_wire_time(now_ms()),
        "eventName": name,
        "eventRW": rw,
        "eventType": "ApiCall",
        "eventCategory": category,
        "acsRegion": region,
        "serviceName": service,
        "requestId": str(uuid.uuid4()),
        "sourceIpAddress": "203.0.113.7",
        "userIdentity": {"type": "ram-user", "accountId": account, "userName": "alice", "principalId": "1"},
    }


def records(events: list[dict[str, Any]]) -> list[EventRecord]:
    return [event_from_mapping(e) for e in events]


def add_trail(store: EventStore, name: str = "trail-one", **fields: Any) -> Trail:
    base: dict[str, Any] = {
        "account_id": ACCOUNT,
        "name": name,
        "home_region": "cn-hangzhou",
        "trail_region": "All",
        "event_rw": EventRW.ALL,
        "status": TrailStatus.ENABLE,
        "create_ms": now_ms(),
        "update_ms": now_ms(),
        "start_logging_ms": now_ms(),
    }
    base.update(fields)
    trail = Trail(**base)
    assert store.create_trail(trail, max_per_region=5, max_organization=1) is None
    return trail


def delivered_bodies(storage: Any, bucket: str, prefix: str = "") -> list[bytes]:
    """Every event body in a bucket's files, in key order (window time, then region)."""
    out: list[bytes] = []
    for key in storage.list(bucket, prefix):
        if DIGESTS in key or INSIGHTS in key:  # the digests and insights beside the files
            continue
        raw = gzip.decompress(storage.get(bucket, key))
        out.extend(orjson.dumps(e) for e in orjson.loads(raw))
    return out


def in_files(storage: Any, bucket: str) -> list[str]:
    """The eventIds in a bucket's files."""
    ids = []
    for key in storage.list(bucket):
        if DIGESTS in key or INSIGHTS in key:
            continue
        ids.extend(e["eventId"] for e in orjson.loads(gzip.decompress(storage.get(bucket, key))))
    return ids
