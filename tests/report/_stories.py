"""Data for the report's tests: the demo story, and a generated busy key with hundreds of IPs.

The busy key ("fleet") is used from 320 IPs in four /24 networks; its IPs appear gradually over 27
days (every network on the first day), each calls a few times a day, one of them downloads 30
backups every night. Two days before the end, three IPs of a network it never used take over:
enumeration, 40 downloads each, 15 secrets, a new role with AdministratorAccess, and that role's
sessions from one of them. A day later one more fleet machine joins, inside a known network.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trailhouse.demo.story import MAIN_ACCOUNT_ID, demo_story
from trailhouse.model.times import DAY_MS, format_wire_time, parse_wire_time
from trailhouse.service.access_key_report import AccessKeyReport, build_report
from trailhouse.service.ingest import ingest_items
from trailhouse.storage.base import EventStore

#: A fixed clock: the story's times (and so every assertion) are derived from it.
END_MS = parse_wire_time("2026-12-06T12:00:00Z")
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

BUSY_KEY = "LTAI5tBusyFleetKey000001"
FLEET_NETWORKS = ("47.98.10", "47.98.11", "47.98.12", "121.40.7")
FLEET_IPS = tuple(f"{FLEET_NETWORKS[i % 4]}.{i // 4 + 1}" for i in range(320))
BACKUP_IP = FLEET_IPS[0]
THIEF_IPS = ("91.240.118.10", "91.240.118.11", "91.240.118.12")
#: A fleet machine first used after the attack, in a network the key already used: new, but weaker.
LATE_FLEET_IP = "47.98.12.250"
ROLE = "ops-automation"
ATTACK_MS = END_MS - 2 * DAY_MS + 3 * HOUR_MS + 17_000


def put(store: EventStore, events: Iterable[dict[str, Any]]) -> None:
    items = list(enumerate(events))
    for start in range(0, len(items), 5000):
        report = ingest_items(store, items[start : start + 5000], may_write=lambda _account: True)
        assert not report.rejected, report.rejected[:1]


def report_of(store: EventStore, key: str, *, since_ms: int | None = None) -> AccessKeyReport:
    return build_report(
        store,
        account_id=MAIN_ACCOUNT_ID,
        access_key_id=key,
        since_ms=since_ms,
        now_ms=END_MS,
        window_start_ms=END_MS - 400 * DAY_MS,
    )


def demo_events(end_ms: int = END_MS) -> list[dict[str, Any]]:
    return list(demo_story(end_ms=end_ms))


@dataclass
class _Busy:
    events: list[dict[str, Any]]
    n: int = 0

    def call(
        self,
        t: int,
        ip: str,
        name: str,
        service: str,
        *,
        resource: tuple[str, str] | None = None,
        identity: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        self.n += 1
        event: dict[str, Any] = {
            "eventId": f"busy-{self.n:06d}",
            "eventVersion": 1,
            "eventTime": format_wire_time(t),
            "eventName": name,
            "eventType": "ApiCall",
            "serviceName": service,
            "sourceIpAddress": ip,
            "userAgent": "fleet-agent/2.4" if ip not in THIEF_IPS else "python-requests/2.31",
            "userIdentity": identity
            or {
                "type": "ram-user",
                "accountId": MAIN_ACCOUNT_ID,
                "principalId": "209999999999999999",
                "userName": "fleet",
                "accessKeyId": BUSY_KEY,
            },
        }
        if resource is not None:
            event["resourceType"], event["resourceName"] = resource
        if request is not None:
            event["requestParameters"] = request
        if response is not None:
            event["responseElements"] = response
        self.events.append(event)


def busy_events() -> list[dict[str, Any]]:
    rng = random.Random(18)
    b = _Busy([])
    start_day = END_MS - 30 * DAY_MS
    for i, ip in enumerate(FLEET_IPS):
        # The first four IPs (one per network) start on day 0; the rest join over the next 27 days.
        first_day = 0 if i < 4 else rng.randrange(0, 27)
        for day in range(first_day, 30):
            t = start_day + day * DAY_MS + rng.randrange(20 * HOUR_MS)
            if t >= END_MS:
                continue
            b.call(t, ip, "DescribeInstances", "Ecs")
            obj = f"fleet-assets/config/{i % 200}.json"
            b.call(t + 2000, ip, "GetObject", "Oss", resource=("ACS::OSS::Object", obj))
    for day in range(30):  # the nightly backup: a routine bulk read
        t = start_day + day * DAY_MS + 20 * HOUR_MS
        for k in range(30):
            b.call(
                t + k * 5000,
                BACKUP_IP,
                "GetObject",
                "Oss",
                resource=("ACS::OSS::Object", f"backups/db-{k}.dump"),
            )

    for k in range(5):
        b.call(END_MS - DAY_MS + k * HOUR_MS, LATE_FLEET_IP, "DescribeInstances", "Ecs")

    t = ATTACK_MS
    thief = THIEF_IPS[0]
    b.call(t, thief, "GetCallerIdentity", "Sts")
    for k, name in enumerate(("ListBuckets", "DescribeRegions", "ListUsers", "ListRoles", "ListSecrets") * 3):
        b.call(t + (k + 1) * 20_000, thief, name, "Ecs" if name.startswith("Describe") else "Ram")
    t += 20 * MINUTE_MS
    for n, ip in enumerate(THIEF_IPS):
        for k in range(40):
            obj = f"customer-exports/{n}/part-{k:03d}.csv"
            b.call(t + n * 100_000 + k * 2000, ip, "GetObject", "Oss", resource=("ACS::OSS::Object", obj))
    t += 30 * MINUTE_MS
    for k in range(15):
        b.call(t + k * 3000, thief, "GetSecretValue", "Kms", resource=("ACS::KMS::Secret", f"prod/db-{k}"))
    t += 30 * MINUTE_MS
    b.call(
        t,
        thief,
        "CreateRole",
        "Ram",
        resource=("ACS::RAM::Role", ROLE),
        request={"RoleName": ROLE},
        response={"Role": {"RoleName": ROLE, "Arn": f"acs:ram::{MAIN_ACCOUNT_ID}:role/{ROLE}"}},
    )
    b.call(
        t + 10_000,
        thief,
        "AttachPolicyToRole",
        "Ram",
        resource=("ACS::RAM::Role", ROLE),
        request={"RoleName": ROLE, "PolicyName": "AdministratorAccess"},
    )
    session = {
        "type": "assumed-role",
        "accountId": MAIN_ACCOUNT_ID,
        "userName": f"{ROLE}:s1",
        "principalId": "3000:s1",
    }
    for k in range(3):
        b.call(t + HOUR_MS + k * 60_000, THIEF_IPS[1], "DescribeInstances", "Ecs", identity=session)
    b.events.sort(key=lambda e: e["eventTime"])
    return b.events
