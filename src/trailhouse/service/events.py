"""Event lookup: the transport-free search core behind both LookupEvents versions, the native API and the CLI.

Three jobs live here, each knowing nothing of HTTP or of the wire's parameter names:

* ``resolve_window`` turns the StartTime/EndTime texts into a checked time window, following the
  rules documented for 2017-12-04 (defaults, 90-day reach, span limit) or of 2020-07-06 (both or
  neither, longer span).
* ``lookup_events`` reads one page in SQL with keyset paging: the position of the last event
  returned, and the window the first page resolved, travel in an HMAC-signed page token bound to
  the account, the operation and a digest of the query.
* ``resource_type_candidates`` widens a short 2017 resource type (``Instance``) to the full type
  names (``ACS::ECS::Instance``) the account's events name.

Problems with a request raise ``LookupRejected``, whose ``kind`` names the problem; each caller maps
kinds to its own error vocabulary (api/rpc/operations/lookup_events.py to the documented error codes).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..model.query import EventFilter, Position, StoredEvent
from ..model.times import DAY_MS, TimeFormatError, parse_wire_time
from ..storage.base import EventLog
from .pagetoken import InvalidPageToken, PageTokens

__all__ = [
    "WINDOW_2017",
    "EventsPage",
    "LookupRejected",
    "Problem",
    "TimeWindow",
    "WindowRules",
    "expand_resource_type",
    "lookup_events",
    "resolve_window",
    "resource_type_candidates",
    "window_2020",
]

#: Version of the position layout inside a page token, so the layout can change without
#: misreading old tokens (an old token is then rejected rather than misinterpreted).
_TOKEN_LAYOUT = 1
_SECOND_MS = 1000


class Problem(enum.StrEnum):
    """What is wrong with a lookup request. Each maps to one of the error codes LookupEvents documents."""

    START_TIME_INVALID = "start_time_invalid"  # StartTime does not parse
    END_TIME_INVALID = "end_time_invalid"  # EndTime does not parse
    TIMES_NOT_PAIRED = "times_not_paired"  # 2020: only one of StartTime/EndTime
    END_NOT_AFTER_START = "end_not_after_start"
    SPAN_TOO_LONG = "span_too_long"
    START_OUT_OF_DATE = "start_out_of_date"  # older than the searchable reach (90 days)
    START_IN_FUTURE = "start_in_future"
    INVALID_PARAMETER = "invalid_parameter"  # any other malformed parameter
    BAD_TOKEN = "bad_token"  # forged, foreign, malformed, or issued for another query


class LookupRejected(ValueError):
    """A lookup request that cannot be answered; ``message`` is fit to show to the caller.

    Named to avoid shadowing the builtin ``LookupError`` (the base of KeyError and IndexError).
    """

    def __init__(self, kind: Problem, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ------------------------------------------------------------------------------------ time window


@dataclass(frozen=True, slots=True)
class WindowRules:
    """The time-window rules of one API version."""

    #: Longest allowed EndTime − StartTime, in days (inclusive: exactly this many days is allowed).
    max_span_days: int
    #: 2020-07-06: StartTime and EndTime must be given together or not at all.
    both_or_neither: bool
    #: A missing StartTime means this many days before now (LookupEvents documents 7).
    default_days: int = 7
    #: Only events of the last this many days can be searched.
    reach_days: int = 90
    #: Tolerance for the caller's clock on the "now" checks (not on the span): a client that
    #: computes "now − 90 days" or "now" on a clock a little behind or ahead of ours is not
    #: rejected. 15 minutes matches the gateway's accepted timestamp skew.
    clock_skew_ms: int = 15 * 60 * 1000


#: 2017-12-04 (as documented): defaults now−7d/now, last 90 days, span ≤ 30 days.
WINDOW_2017 = WindowRules(max_span_days=30, both_or_neither=False)


def window_2020(max_span_days: int = 90) -> WindowRules:
    """2020-07-06: both times or neither, span ≤ 90 days (30 per the older doc; configurable)."""
    return WindowRules(max_span_days=max_span_days, both_or_neither=True)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """An inclusive window of event times in epoch milliseconds."""

    start_ms: int
    end_ms: int


def _parse(text: str, kind: Problem, name: str) -> int:
    try:
        return parse_wire_time(text)
    except TimeFormatError:
        raise LookupRejected(kind, f"The specified {name} is invalid.") from None


def resolve_window(start: str | None, end: str | None, *, now_ms: int, rules: WindowRules) -> TimeWindow:
    """Check StartTime/EndTime (None or "" = not given) and return the window to search.

    Checks run in this order, so each request gets exactly one, predictable code: StartTime
    format, EndTime format, pairing (2020), StartTime in the future, StartTime beyond the 90-day
    reach, EndTime not after StartTime, span too long. An EndTime in the future is accepted and
    kept as given: events stamped slightly ahead (producer clock skew) stay findable, and the
    span limit still bounds the window.

    The wire has whole seconds, so an EndTime covers its whole second (``…:59Z`` includes
    ``…:59.999``); the span is measured on the seconds as given.
    """
    start = start or None
    end = end or None
    start_ms = None if start is None else _parse(start, Problem.START_TIME_INVALID, "StartTime")
    end_ms = None if end is None else _parse(end, Problem.END_TIME_INVALID, "EndTime")
    if rules.both_or_neither and (start_ms is None) != (end_ms is None):
        raise LookupRejected(
            Problem.TIMES_NOT_PAIRED, "StartTime and EndTime must be specified together, or neither."
        )
    now_s_ms = now_ms - now_ms % _SECOND_MS
    if end_ms is None:
        end_ms = now_s_ms
    if start_ms is None:
        start_ms = now_s_ms - rules.default_days * DAY_MS
    if start_ms > now_ms + rules.clock_skew_ms:
        raise LookupRejected(
            Problem.START_IN_FUTURE,
            "The StartTime exceeds the current time. Use GMT time format for queries.",
        )
    if start_ms < now_ms - rules.reach_days * DAY_MS - rules.clock_skew_ms:
        raise LookupRejected(
            Problem.START_OUT_OF_DATE, f"The StartTime exceeds the limit of {rules.reach_days} days."
        )
    if end_ms <= start_ms:
        raise LookupRejected(Problem.END_NOT_AFTER_START, "The end time must be later than the start time.")
    if end_ms - start_ms > rules.max_span_days * DAY_MS:
        raise LookupRejected(Problem.SPAN_TOO_LONG, f"Query time range exceeds {rules.max_span_days} days.")
    return TimeWindow(start_ms, end_ms + _SECOND_MS - 1)


# --------------------------------------------------------------------------------- resource types


def expand_resource_type(value: str, known: Sequence[str]) -> tuple[str, ...]:
    """The full type names a 2017-style short type stands for: itself, plus every ``…::value``.

    A value that already contains ``::`` is a full type name and matches only itself.
    """
    if "::" in value:
        return (value,)
    longer = sorted({t for t in known if t.endswith("::" + value)})
    return (value, *longer)


def resource_type_candidates(store: EventLog, *, account_id: str, value: str) -> tuple[str, ...]:
    """``expand_resource_type`` against the resource types the account's events name."""
    if "::" in value:
        return (value,)
    return expand_resource_type(value, store.resource_types(account_id=account_id))


# ----------------------------------------------------------------------------------------- paging


@dataclass(frozen=True, slots=True)
class EventsPage:
    """One page of events in the requested order, the window searched, and the token for the next page."""

    events: list[StoredEvent]
    next_token: str | None
    window: TimeWindow


def _open_token(
    page_tokens: PageTokens, token: str, *, kind: str, account_id: str, digest: str
) -> tuple[TimeWindow, Position]:
    try:
        data = page_tokens.open(token, kind=kind, account_id=account_id, digest=digest)
    except InvalidPageToken as exc:
        raise LookupRejected(Problem.BAD_TOKEN, f"The specified query parameter is invalid: {exc}.") from None
    if (
        len(data) != 5
        or data[0] != _TOKEN_LAYOUT
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in data)
    ):
        raise LookupRejected(
            Problem.BAD_TOKEN, "The specified query parameter is invalid: NextToken is malformed."
        )
    _, start_ms, end_ms, time_ms, seq = data
    return TimeWindow(start_ms, end_ms), Position(time_ms, seq)


def lookup_events(
    store: EventLog,
    page_tokens: PageTokens,
    *,
    account_id: str,
    flt: EventFilter,
    descending: bool,
    limit: int,
    next_token: str | None,
    token_kind: str,
    digest: str,
) -> EventsPage:
    """One page of the account's events matching ``flt``, newest first when ``descending``.

    ``digest`` identifies the query (every parameter but the page size and the token): a token
    only continues the query that issued it. A continued query searches the window of its first
    page, not ``flt``'s: defaults such as "the last 7 days" move with the clock, and re-resolving
    them would skip the oldest events of a slow, newest-first walk.

    Order is (event time, arrival) — events of the same millisecond come in the order they were
    stored — so positions are total and pages never repeat or skip a pre-existing event, even
    while new events arrive. ``NextToken`` is None on the last page: one extra row is read to
    know whether another page exists.
    """
    # The page size is the caller's to bound (the wire allows 50); only nonsense is refused here.
    if limit < 1:
        raise LookupRejected(Problem.INVALID_PARAMETER, "The page size must be at least 1.")
    after: Position | None = None
    window = TimeWindow(flt.start_ms, flt.end_ms)
    if next_token:
        window, after = _open_token(
            page_tokens, next_token, kind=token_kind, account_id=account_id, digest=digest
        )
        flt = replace(flt, start_ms=window.start_ms, end_ms=window.end_ms)
    found = store.find_events(
        account_id=account_id, flt=flt, after=after, descending=descending, limit=limit + 1
    )
    token = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        token = page_tokens.issue(
            kind=token_kind,
            account_id=account_id,
            digest=digest,
            position=[_TOKEN_LAYOUT, window.start_ms, window.end_ms, last.event_time_ms, last.seq],
        )
    return EventsPage(found, token, window)
