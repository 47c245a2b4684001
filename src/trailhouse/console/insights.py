"""The Insights pages: the account's insights (one row per insight) and one insight explained.

Reads go through ``service.insights.browse``: ``list_episodes`` pages the Start records of a window
newest first (keyset, its own page-token namespace, like the search) and joins each to its End;
``find_episode`` finds one insight by a record's id or its shared id, in the signed-in account
only. The triggering events are read with one ``find_events`` of their ids. Pages need
``actiontrail:LookupInsightEvents``; the Insights status (which types are on) needs
``actiontrail:GetInsightTypes``, as the API's operations do.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..model.insights import INSIGHT_TYPES, InsightAttr, InsightQuery, StoredInsight
from ..model.query import Attr, EventFilter
from ..model.times import DAY_MS, format_wire_time, now_ms
from ..service.insights.browse import (
    Episode,
    InsightsStatus,
    find_episode,
    insights_status,
    list_episodes,
    offered_types,
)
from ..service.insights.lookup import InsightRejected
from ..service.pagetoken import query_digest
from .pages import AROUND_MS, QUICK_RANGES
from .present import EventView, event_view
from .session import Principal
from .state import DEFAULT_ROWS, ROW_CHOICES, SearchState, StateError, parse_rows, parse_window
from .web import PREFIX, Console, PageError

__all__ = ["InsightRow", "insight_page", "insight_rows", "insights_page"]

LOOKUP = "LookupInsightEvents"
TYPES = "GetInsightTypes"
TOKEN_KIND = "ConsoleInsights"
#: Rate insights: observed and baseline are calls per minute (docs/insights.md, "The record").
RATE_TYPES = frozenset({"ApiCallRateInsight", "ApiErrorRateInsight"})
#: What the statistics of each type mean, for the detail page.
STATISTICS_NOTES = {
    "IpInsight": (
        "Observed: one call from a network new to the AccessKey. Baseline: the key's earlier calls per"
        " network it had used; baseline duration: the window (minutes) in which networks new to it"
        " were counted."
    ),
    "ApiCallRateInsight": (
        "Write calls of the API per minute during the insight against its average per minute over the"
        " baseline duration; durations are minutes."
    ),
    "ApiErrorRateInsight": (
        "Failed calls of the API per minute during the insight against its average per minute over the"
        " baseline duration; durations are minutes."
    ),
    "AkInsight": (
        "A call jump: the key's calls per minute against its average since its first call. A dormant key"
        " (observed duration 0): the baseline duration is how long the key had been idle, in minutes."
    ),
    "PolicyChangeInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " policy change."
    ),
    "PasswordChangeInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " password or login-profile change."
    ),
    "TrailConcealmentInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " trail stop, deletion or narrowing."
    ),
}
#: Insights of a key shown on the AccessKey page (the Insights page lists them all).
KEY_PAGE_SHOWN = 20


# -- the list's state, in the URL ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsightsState:
    """The list's URL: ``start``/``end`` (the search's), ``type``, ``key``, ``ip``, ``rows``, ``cursor``."""

    start_ms: int
    end_ms: int
    insight_type: str = ""
    key: str = ""
    ip: str = ""
    rows: int = DEFAULT_ROWS
    cursor: str | None = None

    def params(self, *, cursor: bool = False) -> list[tuple[str, str]]:
        out = [("start", format_wire_time(self.start_ms)), ("end", format_wire_time(self.end_ms))]
        for name, value in (("type", self.insight_type), ("key", self.key), ("ip", self.ip)):
            if value:
                out.append((name, value))
        if self.rows != DEFAULT_ROWS:
            out.append(("rows", str(self.rows)))
        if cursor and self.cursor:
            out.append(("cursor", self.cursor))
        return out

    def query(self, **changes: Any) -> str:
        """This state's query string with ``changes`` (a new list drops the cursor)."""
        state = replace(self, **changes) if changes else self
        return urllib.parse.urlencode(state.params(cursor="cursor" in changes))

    def insight_query(self) -> InsightQuery:
        equals: dict[InsightAttr, str] = {}
        if self.insight_type:
            equals[InsightAttr.INSIGHT_TYPE] = self.insight_type
        if self.key:
            equals[InsightAttr.ACCESS_KEY_ID] = self.key
        if self.ip:
            equals[InsightAttr.SOURCE_IP] = self.ip
        return InsightQuery(self.start_ms, self.end_ms, equals)

    def digest(self) -> str:
        """What a page position is bound to: the window and the filters, not the page size."""
        return query_digest(
            {"s": self.start_ms, "e": self.end_ms, "t": self.insight_type, "k": self.key, "i": self.ip}
        )


def parse_insights_state(params: list[tuple[str, str]], *, now: int, retention_days: int) -> InsightsState:
    single = {name: value for name, value in params}
    start, end = parse_window(single, now_ms=now, retention_days=retention_days)
    kind = single.get("type", "").strip()
    if kind and kind not in INSIGHT_TYPES:
        raise StateError(f"type must be one of {', '.join(INSIGHT_TYPES)}")
    key, ip = single.get("key", "").strip(), single.get("ip", "").strip()
    for name, value in (("key", key), ("ip", ip)):
        if "\x00" in value or len(value) > 256:
            raise StateError(f"{name}: that is not a value to look for")
    return InsightsState(
        start_ms=start,
        end_ms=end,
        insight_type=kind,
        key=key,
        ip=ip,
        rows=parse_rows(single.get("rows", "")),
        cursor=single.get("cursor") or None,
    )


# -- what the pages show ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statistics:
    """insightContext.statistics of one record."""

    insight: float
    insight_duration: int
    baseline: float
    baseline_duration: int
    insight_count: int

    def ratio(self, insight_type: str) -> str:
        """Observed over baseline, as "×12.5", for rates only."""
        # A point insight's numbers are not two rates (IpInsight's baseline is calls per network).
        is_rate = insight_type in RATE_TYPES or (insight_type == "AkInsight" and self.insight_duration > 0)
        if not is_rate:
            return ""
        if self.baseline <= 0:
            return "no calls at all in the baseline"
        return f"×{self.insight / self.baseline:,.1f}"


@dataclass(frozen=True, slots=True)
class Attribution:
    attribute: str
    insight: tuple[tuple[str, float], ...]
    baseline: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class InsightRow:
    """One insight as the pages show it: the Start's facts, the End's time and totals."""

    insight_id: str
    shared_id: str
    end_id: str
    insight_type: str
    insight_object: str
    region: str
    start_ms: int
    end_ms: int | None
    explanation: str
    end_explanation: str
    key: str
    ip: str
    service: str
    event_name: str
    statistics: Statistics | None
    end_statistics: Statistics | None
    attributions: tuple[Attribution, ...]
    triggers: tuple[str, ...]
    body_json: str
    end_json: str

    @property
    def start(self) -> str:
        return format_wire_time(self.start_ms)

    @property
    def end(self) -> str:
        return "" if self.end_ms is None else format_wire_time(self.end_ms)

    @property
    def ongoing(self) -> bool:
        return self.end_ms is None

    @property
    def summary(self) -> str:
        """The explanation a list shows: the End's (the whole insight) once there is one."""
        return self.end_explanation or self.explanation

    @property
    def link(self) -> str:
        return f"{PREFIX}/insights/{urllib.parse.quote(self.insight_id, safe='')}"


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else "" if value is None else str(value)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _statistics(context: dict[str, Any]) -> Statistics | None:
    stats = context.get("statistics")
    if not isinstance(stats, dict):
        return None
    return Statistics(
        _number(stats.get("insight")),
        int(_number(stats.get("insightDuration"))),
        _number(stats.get("baseline")),
        int(_number(stats.get("baselineDuration"))),
        int(_number(stats.get("insightCount"))),
    )


def _values(items: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((_text(i, "value"), _number(i.get("average"))) for i in items if isinstance(i, dict))


def _context(doc: dict[str, Any]) -> dict[str, Any]:
    details = doc.get("insightDetails")
    context = details.get("insightContext") if isinstance(details, dict) else None
    return context if isinstance(context, dict) else {}


def _doc(record: StoredInsight | None) -> dict[str, Any]:
    if record is None:
        return {}
    try:
        doc = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def insight_row(episode: Episode) -> InsightRow:
    first = episode.record
    doc, end_doc = _doc(episode.start), _doc(episode.end)
    lead = doc or end_doc
    context = _context(lead)
    attributions = tuple(
        Attribution(_text(a, "attribute"), _values(a.get("insight")), _values(a.get("baseline")))
        for a in context.get("attributions", ())
        if isinstance(a, dict)
    )
    triggers: list[str] = []
    for source in (doc, end_doc):  # a rate insight's End names the calls of its later minutes too
        ids = source.get("triggeringEventIds")
        for event_id in ids if isinstance(ids, list) else ():
            if isinstance(event_id, str) and event_id not in triggers:
                triggers.append(event_id)
    end_stats = _statistics(_context(end_doc)) if end_doc else None
    start_stats = _statistics(context)
    return InsightRow(
        insight_id=first.insight_id,
        shared_id=first.shared_id,
        end_id=episode.end.insight_id if episode.end else "",
        insight_type=first.insight_type,
        insight_object=first.insight_object,
        region=first.region,
        start_ms=first.event_time_ms,
        end_ms=episode.end.event_time_ms if episode.end else None,
        explanation=_text(lead, "explanation"),
        end_explanation=_text(end_doc, "explanation") if doc else "",
        key=first.access_key_id,
        ip=first.source_ip,
        service=first.service_name,
        event_name=first.event_name,
        statistics=start_stats,
        end_statistics=end_stats if end_stats != start_stats else None,
        attributions=attributions,
        triggers=tuple(triggers),
        body_json=orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() if doc else "",
        end_json=orjson.dumps(end_doc, option=orjson.OPT_INDENT_2).decode() if end_doc else "",
    )


def insight_rows(console: Console, who: Principal, *, key: str, limit: int) -> tuple[list[InsightRow], bool]:
    """The newest insights of an AccessKey (for its page), and whether there are more."""
    svc = console.svc
    now = now_ms()
    query = InsightQuery(
        now - svc.settings.retention_days * DAY_MS, now + DAY_MS, {InsightAttr.ACCESS_KEY_ID: key}
    )
    page = list_episodes(
        svc.store,
        svc.page_tokens,
        account_id=who.account_id,
        query=query,
        limit=limit,
        next_token=None,
        digest=query_digest({"key-page": key}),
        token_kind=TOKEN_KIND,
    )
    return [insight_row(e) for e in page.episodes], page.next_token is not None


# -- the list --------------------------------------------------------------------------------------


def _status(console: Console, who: Principal) -> InsightsStatus | None:
    if not who.allows(TYPES):
        return None
    svc = console.svc
    return insights_status(
        svc.store, account_id=who.account_id, offered=offered_types(svc.settings.insight_types)
    )


def _list(console: Console, request: Request, state: InsightsState) -> dict[str, Any]:
    who = console.check(request, LOOKUP)
    svc = console.svc
    try:
        page = list_episodes(
            svc.store,
            svc.page_tokens,
            account_id=who.account_id,
            query=state.insight_query(),
            limit=state.rows,
            next_token=state.cursor,
            digest=state.digest(),
            token_kind=TOKEN_KIND,
        )
    except InsightRejected as exc:
        raise PageError(
            400, "Cannot page", f"{exc.message} Start the list again from its first page."
        ) from None
    return {
        "who": who,
        "rows": [insight_row(e) for e in page.episodes],
        "next_cursor": page.next_token,
        "enablement": _status(console, who),
    }


async def insights_page(console: Console, request: Request) -> Response:
    now = now_ms()
    try:
        state = parse_insights_state(
            request.query_params.multi_items(), now=now, retention_days=console.svc.settings.retention_days
        )
    except StateError as exc:
        raise PageError(400, "Cannot list insights", str(exc)) from None
    found = await console.bounded(request, _list, console, request, state)
    return console.page(
        request,
        "insights.html",
        nav="insights",
        title="Insights",
        state=state,
        types=INSIGHT_TYPES,
        row_choices=ROW_CHOICES,
        quick=[(label, state.query(start_ms=now - ms, end_ms=now)) for label, ms in QUICK_RANGES],
        detector_on=console.svc.settings.insights_detector == "on",
        **found,
    )


# -- one insight -----------------------------------------------------------------------------------


def _triggers(console: Console, account_id: str, row: InsightRow) -> list[EventView]:
    """The triggering events the store holds, in one read, newest first."""
    if not row.triggers:
        return []
    last = row.end_ms if row.end_ms is not None else row.start_ms
    # The triggers are the calls that raised it: at its start, or during a rate insight's minutes.
    flt = EventFilter(row.start_ms - DAY_MS, last + DAY_MS, equals={Attr.EVENT_ID: tuple(row.triggers)})
    found = console.svc.store.find_events(
        account_id=account_id, flt=flt, after=None, descending=True, limit=len(row.triggers)
    )
    return [event_view(e) for e in found]


def _one(
    console: Console, request: Request, insight_id: str
) -> tuple[Principal, InsightRow, list[EventView]]:
    who = console.check(request, LOOKUP)
    episode = find_episode(console.svc.store, account_id=who.account_id, insight_id=insight_id)
    if episode is None:
        raise PageError(404, "No such insight", "This account holds no insight with that ID.")
    row = insight_row(episode)
    return who, row, _triggers(console, who.account_id, row)


def _search(start_ms: int, end_ms: int, pairs: list[tuple[str, str]]) -> str:
    return f"{PREFIX}/search?{SearchState(start_ms=start_ms, end_ms=end_ms, filters=tuple(pairs)).query()}"


def _links(row: InsightRow, events: list[EventView]) -> list[tuple[str, str]]:
    """Searches for what the insight is about: its own minutes, and a wider look at its key and IP."""
    minute = 60_000
    first = row.start_ms - row.start_ms % minute
    last = (row.end_ms if row.end_ms is not None else now_ms()) // minute * minute + minute - 1
    if events:
        first = min(first, min(e.time_ms for e in events) // minute * minute)
        last = max(last, max(e.time_ms for e in events))
    around = (first - AROUND_MS, last + AROUND_MS)
    links: list[tuple[str, str]] = []
    if row.key:
        pairs = [("EventAccessKeyId", row.key)]
        links.append(("This AccessKey in the insight's minutes", _search(first, last, pairs)))
    if row.insight_type in RATE_TYPES and row.event_name:
        api = [("ServiceName", row.service)] if row.service else []
        api.append(("EventName", row.event_name))
        links.append(("This API in the insight's minutes", _search(first, last, api)))
    links.append(("Every event in the insight's minutes", _search(first, last, [])))
    if row.key:
        pairs = [("EventAccessKeyId", row.key)]
        links.append(("This AccessKey, 3 days either side", _search(*around, pairs)))
    if row.ip:
        links.append(("This source IP, 3 days either side", _search(*around, [("SourceIpAddress", row.ip)])))
    return links


async def insight_page(console: Console, request: Request) -> Response:
    insight_id = request.path_params["insight_id"]
    who, row, events = await console.bounded(request, _one, console, request, insight_id)
    users = sorted({e.user for e in events if e.user})
    return console.page(
        request,
        "insight.html",
        who=who,
        nav="insights",
        title=f"{row.insight_type} {row.start}",
        row=row,
        events=events,
        missing=len(row.triggers) - len(events),
        users=users,
        links=_links(row, events),
        note=STATISTICS_NOTES.get(row.insight_type, ""),
        back=InsightsState(row.start_ms - AROUND_MS, row.start_ms + AROUND_MS).query(),
    )
