"""Events for tests: ``make_event`` (a small builder) and ``complete_event`` (defaults for a dict).

A test names what it cares about (``make_event("DeleteBucket", service="Oss", user="alice")``) and
gets a whole ActionTrail record: eventId, eventTime now, account, user identity, source IP, user
agent, request id. A dict given to ``trail.record`` is completed the same way, nested
``userIdentity`` included, so ``{"eventName": "CreateUser"}`` is a valid event of the trail's
account. Anything the test sets is kept as given.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

from ..model.times import format_wire_time, now_ms, parse_event_time

__all__ = ["DEFAULT_IP", "DEFAULT_USER_AGENT", "TimeLike", "complete_event", "make_event", "wire_time_of"]

DEFAULT_IP = "192.0.2.10"  # TEST-NET-1: never a real caller
DEFAULT_USER_AGENT = "trailhouse-testing"
DEFAULT_REGION = "cn-hangzhou"

TimeLike = dt.datetime | dt.date | str | int | float | None


def wire_time_of(value: TimeLike) -> str:
    """A time as ActionTrail's ``yyyy-MM-ddTHH:mm:ssZ``: a datetime (naive is UTC), a date
    (its midnight UTC), epoch milliseconds, any text ``trailhouse lookup`` accepts, or None (now)."""
    if value is None:
        return format_wire_time(now_ms())
    if isinstance(value, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, int | float):
        return format_wire_time(int(value))
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return format_wire_time(int(aware.timestamp() * 1000))
    if isinstance(value, dt.date):
        midnight = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return format_wire_time(int(midnight.timestamp()) * 1000)
    return format_wire_time(parse_event_time(value))


def _identity(
    base: Mapping[str, Any] | None, *, account_id: str, user: str | None, access_key_id: str | None
) -> dict[str, Any]:
    identity = dict(base or {})
    identity.setdefault("accountId", account_id)
    name = user if user is not None else identity.get("userName", "root")
    identity.setdefault("userName", name)
    identity.setdefault("type", "root-account" if name == "root" else "ram-user")
    identity.setdefault(
        "principalId", account_id if name == "root" else f"2{zlib.crc32(name.encode()) % 10**15:015d}"
    )
    if access_key_id is not None:
        identity.setdefault("accessKeyId", access_key_id)
    return identity


def complete_event(
    event: Mapping[str, Any],
    *,
    account_id: str,
    user: str | None = None,
    access_key_id: str | None = None,
) -> dict[str, Any]:
    """``event`` with every field a realistic record has and the test did not set."""
    out = dict(event)
    event_id = str(out.setdefault("eventId", str(uuid.uuid4()).upper()))
    raw_time = out.get("eventTime")
    out["eventTime"] = wire_time_of(raw_time) if not isinstance(raw_time, str) else raw_time
    out.setdefault("eventVersion", 1)
    out.setdefault("eventName", "DescribeInstances")
    out.setdefault("eventType", "ApiCall")
    name = str(out["eventName"])
    out.setdefault("eventRW", "Read" if name.startswith(("Describe", "List", "Get", "Lookup")) else "Write")
    out.setdefault("eventCategory", "Management")
    out.setdefault("serviceName", "Ecs")
    out.setdefault("eventSource", f"{str(out['serviceName']).lower()}.aliyuncs.com")
    out.setdefault("acsRegion", DEFAULT_REGION)
    out.setdefault("requestId", event_id)
    out.setdefault("sourceIpAddress", DEFAULT_IP)
    out.setdefault("userAgent", DEFAULT_USER_AGENT)
    out["userIdentity"] = _identity(
        out.get("userIdentity"), account_id=account_id, user=user, access_key_id=access_key_id
    )
    out.setdefault("recipientAccountId", out["userIdentity"]["accountId"])
    return out


def make_event(
    name: str = "DescribeInstances",
    *,
    service: str = "Ecs",
    user: str | None = None,
    access_key_id: str | None = None,
    ip: str | None = None,
    time: TimeLike = None,
    error: str | tuple[str, str] | None = None,
    resource: tuple[str, str] | None = None,
    event_id: str | None = None,
    user_agent: str | None = None,
    region: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One event as a dict, for ``trail.record``; the account is the trail's unless ``fields`` has one.

    ``error`` is an errorCode, or (errorCode, errorMessage); ``resource`` is (resourceType,
    resourceName), e.g. ``("ACS::ECS::Instance", "i-bp1")``; ``fields`` are any other event fields
    (``requestParameters={...}``). Leaving ``time`` out means now.
    """
    event: dict[str, Any] = {"eventName": name, "serviceName": service, "eventTime": wire_time_of(time)}
    if event_id is not None:
        event["eventId"] = event_id
    if ip is not None:
        event["sourceIpAddress"] = ip
    if user_agent is not None:
        event["userAgent"] = user_agent
    if region is not None:
        event["acsRegion"] = region
    if error is not None:
        code, message = (error, error) if isinstance(error, str) else error
        event["errorCode"], event["errorMessage"] = code, message
    if resource is not None:
        kind, resource_name = resource
        event["resourceType"], event["resourceName"] = kind, resource_name
        event["referencedResources"] = {kind: [resource_name]}
    identity = dict(fields.pop("userIdentity", None) or {})
    if user is not None:
        identity["userName"] = user
    if access_key_id is not None:
        identity["accessKeyId"] = access_key_id
    if identity:
        event["userIdentity"] = identity
    event.update(fields)
    return event
