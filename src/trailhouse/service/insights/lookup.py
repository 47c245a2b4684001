"""What the Insights operations do, without the wire: settings, selectors, look-ups and counts."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from ...model.insights import INSIGHT_TYPES, InsightCount, InsightPosition, InsightQuery, StoredInsight
from ...model.times import TimeFormatError, parse_wire_time
from ...storage.base import InsightStore
from ..pagetoken import InvalidPageToken, PageTokens

__all__ = [
    "DEFAULT_DAYS",
    "TOKEN_LAYOUT",
    "MAX_SPAN_DAYS",
    "InsightProblem",
    "InsightRejected",
    "InsightsPage",
    "check_type",
    "count_insights",
    "insight_window",
    "lookup_insights",
    "open_position",
    "parse_selectors",
]

DAY_MS = 86_400_000
#: LookupInsightEvents: a missing StartTime is 7 days back; a longer span is cut to the last 93 days.
DEFAULT_DAYS = 7
MAX_SPAN_DAYS = 93
_TOKEN_KIND = "LookupInsightEvents"
#: The layout number first in every insights page token (lookup's and the console's).
TOKEN_LAYOUT = 1


class InsightProblem(enum.StrEnum):
    TYPE_NOT_VALID = "type_not_valid"
    TYPE_NOT_AVAILABLE = "type_not_available"
    START_TIME_INVALID = "start_time_invalid"
    END_TIME_INVALID = "end_time_invalid"
    END_NOT_AFTER_START = "end_not_after_start"
    BAD_TOKEN = "bad_token"
    SELECTORS_INVALID = "selectors_invalid"


class InsightRejected(ValueError):
    def __init__(self, kind: InsightProblem, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def check_type(value: str, available: Sequence[str]) -> str:
    """A valid InsightType this server offers (``available``), or the documented refusal."""
    if value not in INSIGHT_TYPES:
        raise InsightRejected(
            InsightProblem.TYPE_NOT_VALID,
            f"The specified InsightType {value!r} is not valid. Valid values: {', '.join(INSIGHT_TYPES)}.",
        )
    if value not in available:
        raise InsightRejected(
            InsightProblem.TYPE_NOT_AVAILABLE, f"The InsightType {value} is not available on this server."
        )
    return value


def parse_selectors(text: str, available: Sequence[str]) -> list[str]:
    """InsightSelectors: a JSON list of types (or of ``{"InsightType": …}``), or comma-separated."""
    stripped = text.strip()
    items: list[object]
    if stripped.startswith("["):
        try:
            loaded = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            raise InsightRejected(
                InsightProblem.SELECTORS_INVALID, "InsightSelectors is not valid JSON."
            ) from None
        items = list(loaded)
    else:
        items = [part.strip() for part in stripped.split(",") if part.strip()]
    chosen: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("InsightType", item.get("insightType"))
        if not isinstance(item, str):
            raise InsightRejected(
                InsightProblem.SELECTORS_INVALID, "Each InsightSelectors entry must name an InsightType."
            )
        kind = check_type(item, available)
        if kind not in chosen:
            chosen.append(kind)
    return chosen


def _time(text: str | None, problem: InsightProblem, name: str) -> int | None:
    if not text:
        return None
    try:
        return parse_wire_time(text)
    except TimeFormatError:
        raise InsightRejected(
            problem, f"The specified {name} is invalid: use yyyy-MM-ddTHH:mm:ssZ."
        ) from None


def insight_window(start: str | None, end: str | None, *, now_ms: int) -> tuple[int, int]:
    """[start, end] in ms: defaults now−7 d and now; a span over 93 days keeps its last 93 days."""
    start_ms = _time(start, InsightProblem.START_TIME_INVALID, "StartTime")
    end_ms = _time(end, InsightProblem.END_TIME_INVALID, "EndTime")
    now_s = now_ms - now_ms % 1000
    end_ms = now_s if end_ms is None else end_ms
    start_ms = end_ms - DEFAULT_DAYS * DAY_MS if start_ms is None else start_ms
    if end_ms <= start_ms:
        raise InsightRejected(
            InsightProblem.END_NOT_AFTER_START, "The end time must be later than the start time."
        )
    start_ms = max(start_ms, end_ms - MAX_SPAN_DAYS * DAY_MS)
    return start_ms, end_ms + 999


@dataclass(frozen=True, slots=True)
class InsightsPage:
    insights: list[StoredInsight]
    next_token: str | None
    start_ms: int
    end_ms: int


def open_position(
    tokens: PageTokens,
    token: str,
    *,
    kind: str,
    account_id: str,
    digest: str,
    fields: int,
    invalid: str,
) -> list[int]:
    """The ``fields`` integers a page token of insights holds after its layout number; a token that
    does not open, or holds anything else, is refused as ``invalid``: the reason."""
    try:
        data = tokens.open(token, kind=kind, account_id=account_id, digest=digest)
    except InvalidPageToken as exc:
        raise InsightRejected(InsightProblem.BAD_TOKEN, f"{invalid}: {exc}.") from None
    if len(data) != fields + 1 or data[0] != TOKEN_LAYOUT or not all(type(v) is int for v in data):
        raise InsightRejected(InsightProblem.BAD_TOKEN, f"{invalid}: it is malformed.")
    return list(data[1:])


def lookup_insights(
    store: InsightStore,
    tokens: PageTokens,
    *,
    account_id: str,
    query: InsightQuery,
    limit: int,
    next_token: str | None,
    digest: str,
) -> InsightsPage:
    """One page, newest first; a token continues its first page's window (defaults move with the clock)."""
    after: InsightPosition | None = None
    if next_token:
        start_ms, end_ms, time_ms, ref = open_position(
            tokens,
            next_token,
            kind=_TOKEN_KIND,
            account_id=account_id,
            digest=digest,
            fields=4,
            invalid="The specified NextToken is invalid",
        )
        query = InsightQuery(start_ms, end_ms, query.equals)
        after = InsightPosition(time_ms, ref)
    found = store.find_insights(account_id=account_id, query=query, after=after, limit=limit + 1)
    token = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1][0]
        token = tokens.issue(
            kind=_TOKEN_KIND,
            account_id=account_id,
            digest=digest,
            position=[TOKEN_LAYOUT, query.start_ms, query.end_ms, last.event_time_ms, last.ref],
        )
    return InsightsPage([i for _, i in found], token, query.start_ms, query.end_ms)


def count_insights(store: InsightStore, *, account_id: str, start_ms: int, end_ms: int) -> list[InsightCount]:
    return store.count_insights(account_id=account_id, start_ms=start_ms, end_ms=end_ms)
