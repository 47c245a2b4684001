"""Code that reads ActionTrail, tested against Trailhouse with the official SDKs.

``trail`` is the fixture the trailhouse package installs: a throwaway Trailhouse (real HTTP on
127.0.0.1, its own SQLite store, no throttling) and a fresh account with an AccessKey pair.
"""

from __future__ import annotations

from typing import Any

from alibabacloud_actiontrail20171204 import models as m17
from alibabacloud_actiontrail20200706 import models as m20

from trailhouse.testing import Trail, make_event


def who_deleted_buckets(client: Any) -> set[str]:
    """The code under test: user names that called DeleteBucket (2020-07-06 SDK)."""
    attribute = m20.LookupEventsRequestLookupAttribute(key="EventName", value="DeleteBucket")
    response = client.lookup_events(m20.LookupEventsRequest(lookup_attribute=[attribute]))
    return {event["userIdentity"]["userName"] for event in response.body.events}


def test_who_deleted_buckets(trail: Trail) -> None:
    trail.record(
        make_event("DeleteBucket", service="Oss", user="mallory", ip="198.51.100.7"),
        make_event("ListBuckets", service="Oss", user="alice"),
        {"eventName": "DeleteBucket", "serviceName": "Oss", "userIdentity": {"userName": "bob"}},
    )
    assert who_deleted_buckets(trail.client_2020) == {"mallory", "bob"}


def test_failed_console_logins_with_the_2017_sdk(trail: Trail) -> None:
    trail.record(
        make_event("ConsoleSignin", service="AasSub", user="alice", error="InvalidPassword"),
        make_event("ConsoleSignin", service="AasSub", user="alice"),
    )
    events = trail.client_2017.lookup_events(m17.LookupEventsRequest(event_name="ConsoleSignin")).body.events
    assert sorted(e.get("errorCode", "") for e in events) == ["", "InvalidPassword"]


def test_which_ips_used_a_key(trail: Trail) -> None:
    key = "LTAI5tExampleKey00000001"
    for ip in ("203.0.113.5", "203.0.113.5", "198.51.100.20"):
        trail.record(make_event("DescribeInstances", access_key_id=key, ip=ip))
    ips = trail.client_2020.get_access_key_last_used_ips(
        m20.GetAccessKeyLastUsedIpsRequest(access_key=key, service_name="Ecs")
    ).body.ips
    assert {ip.ip for ip in ips} == {"203.0.113.5", "198.51.100.20"}
