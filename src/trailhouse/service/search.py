"""The native search: any number of filters (AND), prefixes, CIDR networks, any window in retention.

Shared by ``GET /api/v1/events`` and ``trailhouse lookup``; parameter names follow the
LookupAttribute keys of LookupEvents 2020-07-06 (``EventName``, ``SourceIpAddress``, …), a
``.prefix`` suffix asks for a prefix match, and a SourceIpAddress with a ``/`` is a network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from ..model.query import Attr, EventFilter, IpNetwork
from ..model.times import DAY_MS, format_wire_time
from ..storage.base import EventLog
from .events import resource_type_candidates

__all__ = [
    "FILTER_PARAMS",
    "PREFIXABLE",
    "SearchParamError",
    "build_search_filter",
    "window_notice",
]

FILTER_PARAMS: dict[str, Attr] = {
    "EventId": Attr.EVENT_ID,
    "RequestId": Attr.REQUEST_ID,
    "EventName": Attr.EVENT_NAME,
    "EventType": Attr.EVENT_TYPE,
    "EventRW": Attr.EVENT_RW,
    "EventCategory": Attr.EVENT_CATEGORY,
    "ServiceName": Attr.SERVICE_NAME,
    "User": Attr.USER_NAME,
    "EventAccessKeyId": Attr.ACCESS_KEY_ID,
    "SourceIpAddress": Attr.SOURCE_IP,
    "RoleName": Attr.ROLE_NAME,
    "SensitiveAction": Attr.SENSITIVE_ACTION,
    "ErrorCode": Attr.ERROR_CODE,
    "ResourceType": Attr.RESOURCE_TYPE,
    "ResourceName": Attr.RESOURCE_NAME,
}
PREFIXABLE = frozenset(
    a for a in FILTER_PARAMS.values() if a not in (Attr.EVENT_ID, Attr.REQUEST_ID, Attr.SENSITIVE_ACTION)
)


class SearchParamError(ValueError):
    pass


def build_search_filter(
    store: EventLog,
    *,
    account_id: str,
    start_ms: int,
    end_ms: int,
    pairs: Iterable[tuple[str, str]],
    failed: bool | None = None,
) -> tuple[EventFilter, dict[str, Any]]:
    """The filter the (name, value) pairs ask for, and the canonical form a page cursor is bound to.

    Repeating a name means any of the values; different names are combined with AND. Names that
    are not filters are ignored, so callers may pass their whole query string.
    """
    if start_ms > end_ms:
        raise SearchParamError("start must not be later than end")
    equals: dict[Attr, tuple[str, ...]] = {}
    prefixes: dict[Attr, str] = {}
    networks: list[IpNetwork] = []
    for name, value in pairs:
        base, _, modifier = name.partition(".")
        attr = FILTER_PARAMS.get(base)
        if attr is None:
            continue
        if modifier == "prefix":
            if attr not in PREFIXABLE:
                raise SearchParamError(f"{base} does not support prefix matching")
            if attr in prefixes and prefixes[attr] != value:
                raise SearchParamError(f"give one {name}")
            prefixes[attr] = value
        elif modifier:
            raise SearchParamError(f"unknown modifier in {name}: use {base}=value or {base}.prefix=value")
        elif attr is Attr.SOURCE_IP and "/" in value:
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise SearchParamError(f"SourceIpAddress: {value!r} is not a CIDR network") from None
        elif attr is Attr.RESOURCE_TYPE:
            candidates = resource_type_candidates(store, account_id=account_id, value=value)
            equals[attr] = tuple(dict.fromkeys(equals.get(attr, ()) + candidates))
        else:
            equals[attr] = tuple(dict.fromkeys(equals.get(attr, ()) + (value,)))
    flt = EventFilter(start_ms, end_ms, equals, prefixes, tuple(networks), failed)
    bound = {
        "start": start_ms,
        "end": end_ms,
        "failed": failed,
        "equals": {str(k): list(v) for k, v in sorted(equals.items())},
        "prefixes": {str(k): v for k, v in sorted(prefixes.items())},
        "networks": [str(n) for n in networks],
    }
    return flt, bound


#: Every event time a store can hold: the times ISO 8601 can write (years 1 to 9999).
ALL_TIME = EventFilter(-62_135_596_800_000, 253_402_300_799_999)


def window_notice(
    store: EventLog,
    *,
    account_id: str,
    start_ms: int,
    end_ms: int,
    stored_count: int,
    now_ms: int,
    retention_days: int,
) -> str | None:
    """Why a window holds nothing (or may hold less than asked), in words; None when all is plain.

    An empty answer alone cannot tell a quiet window from an empty account, a window past
    retention or a typo in the account: the caller would conclude "nothing happened".
    """
    kept_from = now_ms - retention_days * DAY_MS
    retention = f"the retention of {retention_days} days (TRAILHOUSE_RETENTION_DAYS)"
    if stored_count:
        if start_ms < kept_from:
            return (
                f"the window starts before {format_wire_time(kept_from)}, the start of {retention}: "
                "older events may have been removed"
            )
        return None
    if start_ms > now_ms:
        return (
            f"the window starts in the future ({format_wire_time(start_ms)};"
            f" now is {format_wire_time(now_ms)})"
        )
    if end_ms < kept_from:
        return (
            f"the window ends before {format_wire_time(kept_from)}, the start of {retention}: "
            "events that old are not kept"
        )
    newest = store.find_events(account_id=account_id, flt=ALL_TIME, after=None, descending=True, limit=1)
    if not newest:
        return f"account {account_id} has no events in this store"
    return (
        f"account {account_id} has no events in the window; its newest event is from "
        f"{format_wire_time(newest[0].event_time_ms)}"
    )
