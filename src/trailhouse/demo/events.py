"""Single events: IDs, wire times and the ActionTrail event structure of one API call.

The generator's hot loop builds the same shape faster (``generate._CallBuilder``); ``api_event`` is
for hand-written events such as the demo story's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from .operations import GLOBAL_REGION, KINDS, Op, Service
from .vocabulary import KEY_CHARS

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "api_event",
    "event_id_for",
    "gateway_params",
    "guid",
    "host_for",
    "oss_request_id",
    "random_key_id",
    "signin_id",
    "wire_time",
]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def guid(bits: int) -> str:
    """128 random bits as an uppercase GUID like ``239EB588-CD24-522E-B0B5-174A1A588BE0``."""
    h = f"{bits:032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def oss_request_id(bits: int) -> str:
    """128 random bits as an OSS request ID: 24 hex digits, e.g. ``6110E64B004C4034363CDC5E``."""
    return f"{bits >> 32:024X}"


def event_id_for(service: str, bits: int) -> str:
    """The eventId (= requestId) of an API call: OSS has its own request ID format."""
    return oss_request_id(bits) if service == "Oss" else guid(bits)


def signin_id(bits: int, t: int) -> str:
    """A sign-in event ID like ``96.227_1606286128938_2847``: a host, the time, a counter."""
    return f"{(bits >> 8 & 0xFF) or 1}.{bits & 0xFF}_{t}_{(bits >> 16) % 9000 + 1000}"


def wire_time(ms: int) -> str:
    """Epoch milliseconds to ``yyyy-MM-ddTHH:mm:ssZ`` (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def random_key_id(rng: random.Random, prefix: str = "LTAI5t", length: int = 24) -> str:
    """An AccessKey ID like ``LTAI5tAbC...`` (24 characters; STS tokens are longer)."""
    return prefix + "".join(rng.choices(KEY_CHARS, k=length - len(prefix)))


def host_for(svc: Service, region: str) -> str:
    return svc.host.replace("{r}", region)


def api_event(
    *,
    event_id: str,
    event_time: str,
    operation: Op,
    region: str,
    params: dict[str, Any],
    identity: dict[str, Any],
    ip: str,
    user_agent: str,
    resources: Sequence[tuple[str, str]] = (),
    error: tuple[str, str] | None = None,
    response: dict[str, Any] | None = None,
    event_type: str = "ApiCall",
    source: str | None = None,
) -> dict[str, Any]:
    """One event in ActionTrail's structure. ``resources`` are (kind, name) pairs; ``params`` are complete.

    Slow-path helper for hand-written events (the demo story); the generator's hot loop is faster.
    """
    svc = operation.service
    acs_region = GLOBAL_REGION if svc.is_global else region
    event: dict[str, Any] = {
        "eventId": event_id,
        "eventVersion": 1,
        "eventTime": event_time,
        "eventName": operation.name,
        "eventSource": source or host_for(svc, acs_region),
        "eventType": event_type,
        "eventRW": operation.rw,
        "eventCategory": operation.category,
        "serviceName": svc.name,
    }
    if svc.api_version:
        event["apiVersion"] = svc.api_version
    event["acsRegion"] = acs_region
    event["isGlobal"] = svc.is_global
    event["requestId"] = event_id
    event["requestParameters"] = params
    if response is not None:
        event["responseElements"] = response
    if resources:
        refs: dict[str, list[str]] = {}
        for kind, name in resources:
            refs.setdefault(KINDS[kind].acs_type, []).append(name)
        event["referencedResources"] = refs
        if len(resources) == 1:
            event["resourceType"] = KINDS[resources[0][0]].acs_type
            event["resourceName"] = resources[0][1]
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    event["sourceIpAddress"] = ip
    event["userAgent"] = user_agent
    event["userIdentity"] = identity
    event["recipientAccountId"] = identity["accountId"]
    event["additionalEventData"] = {"Scheme": "https", "CallerBid": "26842"}
    return event


def gateway_params(operation: Op, region: str, request_id: str, source: str | None = None) -> dict[str, Any]:
    """The keys the API gateway adds to every recorded request (in requestParameters).

    ``source`` is the host that served the call when it differs from the service endpoint (OSS buckets).
    """
    host = host_for(operation.service, GLOBAL_REGION if operation.service.is_global else region)
    return {
        "AcsHost": host,
        "HostId": source or host,
        "AcsProduct": operation.service.name,
        "RegionId": region,
        "RequestId": request_id,
    }
