"""The Insights operations of 2020-07-06 on the wire.

EnableInsight, DisableInsight, GetInsightTypes, PutInsightSelectors, GetInsightSelectors,
GetInsightsEventsCount and LookupInsightEvents. The logic is ``service.insights.lookup``; the
decisions the documentation leaves open are in docs/compatibility.md ("Insights").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ....model.insights import INSIGHT_TYPES, InsightAttr, InsightQuery
from ....service.insights.lookup import (
    InsightProblem,
    InsightRejected,
    check_type,
    count_insights,
    insight_window,
    lookup_insights,
    parse_selectors,
)
from ....service.pagetoken import query_digest
from ....settings import Settings
from ...context import Services
from ..call import Call
from ..errors import (
    ApiError,
    InsightTypeNotAvailable,
    InsightTypeNotValid,
    InvalidInsightSelectors,
    InvalidParameter,
    InvalidParameterCombination,
    InvalidParameterEndTime,
    InvalidParameterStartTime,
    InvalidQueryParameter,
    Missing,
    TrailNotFoundException,
)
from ..render import JsonDocuments
from .lookup_events import parse_max_results

__all__ = [
    "INSIGHT_LOOKUP_KEYS",
    "available_types",
    "disable_insight",
    "enable_insight",
    "get_insight_selectors",
    "get_insight_types",
    "get_insights_events_count",
    "lookup_insight_events",
    "put_insight_selectors",
]

#: LookupInsightEvents' LookupAttribute keys (at most two, combined with AND).
INSIGHT_LOOKUP_KEYS: Mapping[str, InsightAttr] = MappingProxyType(
    {
        "ServiceName": InsightAttr.SERVICE_NAME,
        "EventName": InsightAttr.EVENT_NAME,
        "SourceIpAddress": InsightAttr.SOURCE_IP,
        "InsightType": InsightAttr.INSIGHT_TYPE,
        "EventId": InsightAttr.EVENT_ID,
        "AccessKeyId": InsightAttr.ACCESS_KEY_ID,
        "InsightObject": InsightAttr.INSIGHT_OBJECT,
    }
)
_ATTRIBUTE_PARAM = re.compile(r"LookupAttribute\.([0-9]{1,6})\.(Key|Value)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_MS = 86_400_000

_WIRE_ERRORS: Mapping[InsightProblem, type[ApiError]] = MappingProxyType(
    {
        InsightProblem.TYPE_NOT_VALID: InsightTypeNotValid,
        InsightProblem.TYPE_NOT_AVAILABLE: InsightTypeNotAvailable,
        InsightProblem.START_TIME_INVALID: InvalidParameterStartTime,
        InsightProblem.END_TIME_INVALID: InvalidParameterEndTime,
        InsightProblem.END_NOT_AFTER_START: InvalidParameterCombination,
        InsightProblem.BAD_TOKEN: InvalidQueryParameter,
        InsightProblem.SELECTORS_INVALID: InvalidInsightSelectors,
    }
)


def available_types(settings: Settings) -> tuple[str, ...]:
    offered = {t.strip() for t in settings.insight_types.split(",") if t.strip()}
    return tuple(t for t in INSIGHT_TYPES if t in offered)


def _given(params: Mapping[str, str], name: str) -> str | None:
    return params.get(name) or None


def _wire(exc: InsightRejected) -> ApiError:
    return _WIRE_ERRORS[exc.kind](exc.message)


def _insight_type(call: Call, svc: Services) -> str:
    value = _given(call.params, "InsightType")
    if value is None:
        raise Missing("InsightType")
    try:
        return check_type(value, available_types(svc.settings))
    except InsightRejected as exc:
        raise _wire(exc) from None


def enable_insight(call: Call, svc: Services) -> dict[str, Any]:
    kind = _insight_type(call, svc)
    svc.store.set_insight_type(
        account_id=call.account_id, insight_type=kind, enabled=True, now_ms=call.now_ms
    )
    return {}


def disable_insight(call: Call, svc: Services) -> dict[str, Any]:
    kind = _insight_type(call, svc)
    svc.store.set_insight_type(
        account_id=call.account_id, insight_type=kind, enabled=False, now_ms=call.now_ms
    )
    return {}


def get_insight_types(call: Call, svc: Services) -> dict[str, Any]:
    """InsightTypes: every offered type → whether this account enabled it."""
    enabled = set(svc.store.insight_types_enabled(account_id=call.account_id))
    return {"InsightTypes": {kind: kind in enabled for kind in available_types(svc.settings)}}


def _trail(call: Call) -> tuple[str, str]:
    name = _given(call.params, "TrailName")
    if name is None:
        raise Missing("TrailName")
    return (
        name,
        f"acs:actiontrail:{_given(call.params, 'RegionId') or 'cn-hangzhou'}:{call.account_id}:trail/{name}",
    )


def put_insight_selectors(call: Call, svc: Services) -> dict[str, Any]:
    name, arn = _trail(call)
    try:
        selectors = parse_selectors(call.params.get("InsightSelectors", ""), available_types(svc.settings))
    except InsightRejected as exc:
        raise _wire(exc) from None
    if not svc.store.put_insight_selectors(
        account_id=call.account_id, trail_name=name, selectors=selectors, now_ms=call.now_ms
    ):
        raise TrailNotFoundException()
    return {"InsightSelectors": selectors, "TrailArn": arn}


def get_insight_selectors(call: Call, svc: Services) -> dict[str, Any]:
    name, arn = _trail(call)
    if svc.store.get_trail(account_id=call.account_id, name=name) is None:
        raise TrailNotFoundException()
    selectors = svc.store.get_insight_selectors(account_id=call.account_id, trail_name=name)
    return {"InsightSelectors": selectors or [], "TrailArn": arn}


def _count_window(call: Call) -> tuple[int, int]:
    date = _given(call.params, "Date")
    if date is not None and not (_given(call.params, "StartTime") or _given(call.params, "EndTime")):
        day = date[:10]
        if not _DATE.fullmatch(day) or (len(date) > 10 and date[10] != "T"):
            raise InvalidParameter("Date", "The specified Date is invalid: use yyyy-MM-dd.")
        try:
            start, _ = insight_window(f"{day}T00:00:00Z", f"{day}T23:59:59Z", now_ms=call.now_ms)
        except InsightRejected:
            raise InvalidParameter("Date", "The specified Date is invalid: use yyyy-MM-dd.") from None
        return start, start + _DAY_MS - 1
    try:
        return insight_window(
            _given(call.params, "StartTime"), _given(call.params, "EndTime"), now_ms=call.now_ms
        )
    except InsightRejected as exc:
        raise _wire(exc) from None


def get_insights_events_count(call: Call, svc: Services) -> dict[str, Any]:
    """Data: insights (Start records) per type and region in the window; all fit one page."""
    start, end = _count_window(call)
    counts = count_insights(svc.store, account_id=call.account_id, start_ms=start, end_ms=end)
    return {"Data": [{"Count": c.count, "InsightType": c.insight_type, "RegionId": c.region} for c in counts]}


def _conditions(params: Mapping[str, str], available: tuple[str, ...]) -> dict[InsightAttr, str]:
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for name, text in params.items():
        if not name.startswith("LookupAttribute."):
            continue
        match = _ATTRIBUTE_PARAM.fullmatch(name)
        if match is None or int(match[1]) < 1:
            raise InvalidQueryParameter.because(f"{name} is not a valid parameter name.")
        (keys if match[2] == "Key" else values)[int(match[1])] = text
    chosen: dict[InsightAttr, str] = {}
    for n in sorted(keys.keys() | values.keys()):
        key, value = keys.get(n, ""), values.get(n, "")
        if not key or not value:
            raise InvalidQueryParameter.because(
                f"LookupAttribute.{n} needs both a Key and a non-empty Value."
            )
        attr = INSIGHT_LOOKUP_KEYS.get(key)
        if attr is None:
            raise InvalidQueryParameter.because(
                f"LookupAttribute.{n}.Key {key!r} is not one of {', '.join(INSIGHT_LOOKUP_KEYS)}."
            )
        if attr is InsightAttr.INSIGHT_TYPE and value not in INSIGHT_TYPES:
            raise InsightTypeNotValid(f"The specified InsightType {value!r} is not valid.")
        chosen[attr] = value
    if len(chosen) > 2:
        raise InvalidQueryParameter.because("LookupAttribute takes at most two conditions.")
    return chosen


def lookup_insight_events(call: Call, svc: Services) -> dict[str, Any]:
    conditions = _conditions(call.params, available_types(svc.settings))
    limit = parse_max_results(_given(call.params, "MaxResults"))
    start, end = _given(call.params, "StartTime"), _given(call.params, "EndTime")
    digest = query_digest({"c": {str(a): v for a, v in conditions.items()}, "s": start or "", "e": end or ""})
    try:
        start_ms, end_ms = insight_window(start, end, now_ms=call.now_ms)
        page = lookup_insights(
            svc.store,
            svc.page_tokens,
            account_id=call.account_id,
            query=InsightQuery(start_ms, end_ms, conditions),
            limit=limit,
            next_token=_given(call.params, "NextToken"),
            digest=digest,
        )
    except InsightRejected as exc:
        raise _wire(exc) from None
    # The documented reply is {RequestId, Events, NextToken}: no StartTime/EndTime as LookupEvents has.
    reply: dict[str, Any] = {"Events": JsonDocuments([i.body for i in page.insights])}
    if page.next_token is not None:
        reply["NextToken"] = page.next_token
    return reply
