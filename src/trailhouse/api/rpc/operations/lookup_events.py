"""LookupEvents on the wire, versions 2017-12-04 and 2020-07-06.

Each handler reads the string parameters, turns them into an ``EventFilter`` and paging options,
calls ``service.events.lookup_events`` and shapes the reply. The reply has no RequestId: the
gateway adds it. Decisions on undocumented behaviour are listed, with reasons, in
docs/compatibility.md (section "LookupEvents").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ....model.query import Attr, EventFilter
from ....model.times import format_wire_time
from ....service.events import (
    WINDOW_2017,
    LookupRejected,
    Problem,
    WindowRules,
    lookup_events,
    resolve_window,
    resource_type_candidates,
    window_2020,
)
from ....service.pagetoken import query_digest
from ....settings import Settings
from ...context import Services
from ...wire import plain_bool, plain_int
from ..call import Call
from ..errors import (
    ApiError,
    InvalidParameterCombination,
    InvalidParameterDateOutOfRange,
    InvalidParameterEndTime,
    InvalidParameterStartTime,
    InvalidParameterStartTimeExceedsCurrent,
    InvalidParameterStartTimeOutOfDate,
    InvalidQueryParameter,
)
from ..render import JsonDocuments

__all__ = [
    "DEFAULT_MAX_RESULTS",
    "LOOKUP_KEYS_2020",
    "MAX_RESULTS",
    "PARAMS_2017",
    "conditions_2017",
    "conditions_2020",
    "lookup_events_2017",
    "lookup_events_2020",
    "parse_max_results",
]

#: Not documented for LookupEvents; the sibling APIs default to 20.
DEFAULT_MAX_RESULTS = 20
MAX_RESULTS = 50
#: The 2020 span when settings do not say otherwise (90 per the API overview, 30 in an older page).
DEFAULT_SPAN_DAYS_2020 = 90

#: The 2017-12-04 dedicated filter parameters, in the API reference's order.
PARAMS_2017: tuple[tuple[str, Attr], ...] = (
    ("Event", Attr.EVENT_ID),
    ("Request", Attr.REQUEST_ID),
    ("EventType", Attr.EVENT_TYPE),
    ("ServiceName", Attr.SERVICE_NAME),
    ("EventName", Attr.EVENT_NAME),
    ("User", Attr.USER_NAME),
    ("ResourceType", Attr.RESOURCE_TYPE),
    ("ResourceName", Attr.RESOURCE_NAME),
    ("EventRW", Attr.EVENT_RW),
    ("EventAccessKeyId", Attr.ACCESS_KEY_ID),
)

#: The twelve 2020-07-06 LookupAttribute keys.
LOOKUP_KEYS_2020: Mapping[str, Attr] = MappingProxyType(
    {
        "ServiceName": Attr.SERVICE_NAME,
        "EventName": Attr.EVENT_NAME,
        "User": Attr.USER_NAME,
        "EventId": Attr.EVENT_ID,
        "ResourceType": Attr.RESOURCE_TYPE,
        "ResourceName": Attr.RESOURCE_NAME,
        "EventRW": Attr.EVENT_RW,
        "EventAccessKeyId": Attr.ACCESS_KEY_ID,
        "SensitiveAction": Attr.SENSITIVE_ACTION,
        "SourceIpAddress": Attr.SOURCE_IP,
        "EventType": Attr.EVENT_TYPE,
        "RoleName": Attr.ROLE_NAME,
    }
)

_EVENT_RW_VALUES = frozenset({"Read", "Write", "All"})
_DIRECTIONS = frozenset({"FORWARD", "BACKWARD"})
_ATTRIBUTE_PARAM = re.compile(r"LookupAttribute\.([0-9]{1,6})\.(Key|Value)")

_WIRE_ERRORS: Mapping[Problem, type[ApiError]] = MappingProxyType(
    {
        Problem.START_TIME_INVALID: InvalidParameterStartTime,
        Problem.END_TIME_INVALID: InvalidParameterEndTime,
        # "Both or neither" is a rule about combining parameters; the only documented such code fits.
        Problem.TIMES_NOT_PAIRED: InvalidParameterCombination,
        Problem.END_NOT_AFTER_START: InvalidParameterCombination,
        # InvalidTimeRangeException (the documented combined code) is never raised: the two precise
        # codes above tell the caller which of its two conditions failed.
        Problem.SPAN_TOO_LONG: InvalidParameterDateOutOfRange,
        Problem.START_OUT_OF_DATE: InvalidParameterStartTimeOutOfDate,
        Problem.START_IN_FUTURE: InvalidParameterStartTimeExceedsCurrent,
        Problem.INVALID_PARAMETER: InvalidQueryParameter,
        Problem.BAD_TOKEN: InvalidQueryParameter,
    }
)


_invalid = InvalidQueryParameter.because


def _given(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value; an empty string counts as absent (some clients send every field)."""
    return params.get(name) or None


def parse_max_results(text: str | None) -> int:
    """MaxResults as a page size: absent or 0 → the default (20); otherwise 1–50."""
    if text is None:
        return DEFAULT_MAX_RESULTS
    size = plain_int(text, max_digits=6)
    if size is None or size > MAX_RESULTS:
        raise _invalid(f"MaxResults must be an integer from 0 to {MAX_RESULTS}.")
    # 0 is inside the documented range but an empty page is useless; clients that send 0 mean
    # "no preference" (the zero value of an unset integer field), so it gets the default.
    return size or DEFAULT_MAX_RESULTS


def _check_event_rw(value: str, where: str) -> None:
    if value not in _EVENT_RW_VALUES:
        raise _invalid(f"{where} must be Read, Write or All.")


def conditions_2017(params: Mapping[str, str]) -> dict[Attr, str]:
    """The filter conditions of a 2017-12-04 call (all of them combined with AND)."""
    conditions: dict[Attr, str] = {}
    for name, attr in PARAMS_2017:
        value = _given(params, name)
        if value is None:
            continue
        if attr is Attr.EVENT_RW:
            _check_event_rw(value, "EventRW")
            if value == "All":
                continue
        conditions[attr] = value
    return conditions


def conditions_2020(params: Mapping[str, str]) -> dict[Attr, str]:
    """The (at most two) conditions of a 2020-07-06 call's LookupAttribute.N.Key/Value pairs.

    Pairs are read in order of N into a map: a repeated key replaces the earlier value but keeps
    its place (the second one applies). The first two keys of that map are the conditions; any
    further ones are ignored without error, as the cloud does. Every key and value is checked, used or not,
    so a typo is reported rather than silently widening the search.
    """
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for name, text in params.items():
        if not name.startswith("LookupAttribute."):
            continue
        match = _ATTRIBUTE_PARAM.fullmatch(name)
        if match is None or int(match[1]) < 1:
            raise _invalid(f"{name} is not a valid parameter name; use LookupAttribute.N.Key/Value, N ≥ 1.")
        (keys if match[2] == "Key" else values)[int(match[1])] = text
    chosen: dict[Attr, str] = {}
    for n in sorted(keys.keys() | values.keys()):
        key, value = keys.get(n, ""), values.get(n, "")
        if not key or not value:
            raise _invalid(f"LookupAttribute.{n} needs both a Key and a non-empty Value.")
        attr = LOOKUP_KEYS_2020.get(key)
        if attr is None:
            raise _invalid(f"LookupAttribute.{n}.Key {key!r} is not one of {', '.join(LOOKUP_KEYS_2020)}.")
        if attr is Attr.EVENT_RW:
            _check_event_rw(value, f"LookupAttribute.{n}.Value for EventRW")
        elif attr is Attr.SENSITIVE_ACTION:
            sensitive = plain_bool(value)
            if sensitive is None:
                raise _invalid(f"LookupAttribute.{n}.Value for SensitiveAction must be true or false.")
            value = "true" if sensitive else "false"
        chosen[attr] = value
    first_two = dict(list(chosen.items())[:2])
    if first_two.get(Attr.EVENT_RW) == "All":
        del first_two[Attr.EVENT_RW]
    return first_two


def _max_span_2020(settings: Settings) -> int:
    return settings.lookup_events_2020_max_span_days or DEFAULT_SPAN_DAYS_2020


def _lookup(
    call: Call,
    svc: Services,
    *,
    conditions: dict[Attr, str],
    short_resource_types: bool,
    rules: WindowRules,
    direction: str,
) -> dict[str, Any]:
    start, end = _given(call.params, "StartTime"), _given(call.params, "EndTime")
    limit = parse_max_results(_given(call.params, "MaxResults"))
    # Everything that selects events is bound into the token; MaxResults is not, because keyset
    # positions make a changed page size harmless.
    digest = query_digest(
        {"c": {str(a): v for a, v in conditions.items()}, "s": start or "", "e": end or "", "d": direction}
    )
    equals: dict[Attr, tuple[str, ...]] = {attr: (value,) for attr, value in conditions.items()}
    try:
        window = resolve_window(start, end, now_ms=call.now_ms, rules=rules)
        if short_resource_types and Attr.RESOURCE_TYPE in conditions:
            equals[Attr.RESOURCE_TYPE] = resource_type_candidates(
                svc.store, account_id=call.account_id, value=conditions[Attr.RESOURCE_TYPE]
            )
        page = lookup_events(
            svc.store,
            svc.page_tokens,
            account_id=call.account_id,
            flt=EventFilter(start_ms=window.start_ms, end_ms=window.end_ms, equals=equals),
            descending=direction == "BACKWARD",
            limit=limit,
            next_token=_given(call.params, "NextToken"),
            token_kind=f"LookupEvents/{call.version}",
            digest=digest,
        )
    except LookupRejected as exc:
        raise _WIRE_ERRORS[exc.kind](exc.message) from None
    reply: dict[str, Any] = {
        "StartTime": format_wire_time(page.window.start_ms),
        "EndTime": format_wire_time(page.window.end_ms),
        # Events go out exactly as they were ingested (unknown fields and value types kept); a JSON
        # reply splices the stored bodies instead of parsing and re-writing each one.
        "Events": JsonDocuments([event.body for event in page.events]),
    }
    if page.next_token is not None:
        reply["NextToken"] = page.next_token
    return reply


def lookup_events_2017(call: Call, svc: Services) -> dict[str, Any]:
    """2017-12-04: eight dedicated filters, newest first, span ≤ 30 days."""
    return _lookup(
        call,
        svc,
        conditions=conditions_2017(call.params),
        short_resource_types=True,
        rules=WINDOW_2017,
        direction="BACKWARD",
    )


def lookup_events_2020(call: Call, svc: Services) -> dict[str, Any]:
    """2020-07-06: up to two LookupAttribute conditions, Direction, span ≤ 90 days (configurable)."""
    direction = _given(call.params, "Direction") or "BACKWARD"
    if direction not in _DIRECTIONS:
        raise _invalid("Direction must be FORWARD or BACKWARD.")
    return _lookup(
        call,
        svc,
        conditions=conditions_2020(call.params),
        short_resource_types=False,
        rules=window_2020(_max_span_2020(svc.settings)),
        direction=direction,
    )
