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

from starlette.requests import Request
from starlette.responses import Response

from ..model.insights import INSIGHT_TYPES, InsightAttr, InsightQuery
from ..model.query import Attr, EventFilter
from ..model.times import DAY_MS, format_wire_time, now_ms
from ..service.insights.browse import (
    InsightsStatus,
    find_episode,
    insights_status,
    list_episodes,
    offered_types,
)
from ..service.insights.lookup import InsightRejected
from ..service.pagetoken import query_digest
from .insight_view import RATE_TYPES, STATISTICS_NOTES, InsightRow, insight_row
from .pages import AROUND_MS, QUICK_RANGES
from .present import EventView, event_view
from .session import Principal
from .state import DEFAULT_ROWS, ROW_CHOICES, SearchState, StateError, parse_rows, parse_window
from .web import PREFIX, Console, PageError

__all__ = ["InsightsState", "insight_page", "insight_rows", "insights_page"]

LOOKUP = "LookupInsightEvents"
TYPES = "GetInsightTypes"
TOKEN_KIND = "ConsoleInsights"
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
