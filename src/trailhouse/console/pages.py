"""Event pages: the search (rows, histogram, export) and an event's own page.

Everything reads through the service functions the API uses: ``build_search_filter`` for the
filters, ``lookup_events`` for keyset pages (its own page-token namespace), the store's
``count_by_time`` for the histogram, ``iter_events`` for the export, whose CSV is the native
export's (``render.events_csv``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..api.bounded import stream_bounded
from ..model.event_text import parse_body
from ..model.query import EventFilter, StoredEvent
from ..model.times import DAY_MS, format_wire_time, now_ms
from ..render.events_csv import CSV_COLUMNS, csv_row
from ..service.events import LookupRejected, lookup_events
from ..service.pagetoken import query_digest
from ..service.search import window_notice
from .integrity import MarkView, find_event, mark_of
from .present import event_view, histogram, pretty_json
from .session import Principal
from .state import COLUMNS, DEFAULT_COLUMNS, FORM_FILTERS, ROW_CHOICES, SearchState, StateError, parse_state
from .web import PREFIX, SECURITY_HEADERS, Console, PageError

__all__ = ["event_page", "export", "histogram_svg", "search_page"]

SEARCH = "LookupEvents"
#: The "last …" links of the search form: the same search over a window ending now.
QUICK_RANGES = (
    ("1 hour", 3_600_000),
    ("24 hours", DAY_MS),
    ("7 days", 7 * DAY_MS),
    ("30 days", 30 * DAY_MS),
    ("90 days", 90 * DAY_MS),
)
#: How far around an event its "same …" links search.
AROUND_MS = 3 * DAY_MS


def _state(console: Console, request: Request) -> SearchState:
    try:
        return parse_state(
            request.query_params.multi_items(),
            now_ms=now_ms(),
            retention_days=console.svc.settings.retention_days,
        )
    except StateError as exc:
        raise PageError(400, "Cannot search", str(exc)) from None


def _filter(console: Console, state: SearchState, who: Principal) -> tuple[EventFilter, dict[str, Any]]:
    try:
        return state.build_filter(console.svc.store, who.account_id)
    except StateError as exc:
        raise PageError(400, "Cannot search", str(exc)) from None


def _search(console: Console, request: Request, state: SearchState) -> dict[str, Any]:
    """Everything the search page reads, in one worker call: who, the page of rows, the chart."""
    who = console.check(request, SEARCH)
    flt, bound = _filter(console, state, who)
    svc = console.svc
    try:
        page = lookup_events(
            svc.store,
            svc.page_tokens,
            account_id=who.account_id,
            flt=flt,
            descending=True,
            limit=state.rows,
            next_token=state.cursor,
            token_kind="console",
            digest=query_digest(bound),
        )
    except LookupRejected as exc:
        raise PageError(
            400, "Cannot page", f"{exc.message} Start the search again from its first page."
        ) from None
    chart = histogram(svc.store, account_id=who.account_id, flt=flt) if state.histogram else None
    views = [event_view(e) for e in page.events]
    notice = None
    if not views and not state.cursor:
        # An empty page alone cannot tell a quiet window from one past retention or an empty account.
        stored = svc.store.summarize(account_id=who.account_id, start_ms=flt.start_ms, end_ms=flt.end_ms)
        notice = window_notice(
            svc.store,
            account_id=who.account_id,
            start_ms=flt.start_ms,
            end_ms=flt.end_ms,
            stored_count=stored.count,
            now_ms=now_ms(),
            retention_days=svc.settings.retention_days,
        )
    return {
        "who": who,
        # Cells computed here, not by the template: a page of 200 rows stays cheap to render.
        "rows": [(v, quote(v.event_id, safe=""), [(c, v.column(c)) for c in state.columns]) for v in views],
        "chart": chart,
        "next_cursor": page.next_token,
        "notice": notice,
    }


async def search_page(console: Console, request: Request) -> Response:
    state = _state(console, request)
    now = now_ms()
    found = await console.bounded(request, _search, console, request, state)
    return console.page(
        request,
        "search.html",
        nav="search",
        title="Search",
        state=state,
        columns=COLUMNS,
        default_columns=DEFAULT_COLUMNS,
        form_filters=FORM_FILTERS,
        row_choices=ROW_CHOICES,
        quick=[(label, state.query(start_ms=now - ms, end_ms=now)) for label, ms in QUICK_RANGES],
        **found,
    )


async def histogram_svg(console: Console, request: Request) -> Response:
    """The histogram alone, as the search page embeds it (for scripts and the benchmark)."""
    who = await console.signed_in(request, SEARCH)
    state = _state(console, request)
    flt, _ = await console.bounded(request, _filter, console, state, who)
    chart = await console.bounded(
        request, lambda: histogram(console.svc.store, account_id=who.account_id, flt=flt)
    )
    svg = console.env.get_template("histogram.svg").render(chart=chart, state=state, standalone=True)
    return Response(svg, media_type="image/svg+xml", headers=SECURITY_HEADERS)


def _export_chunks(console: Console, account_id: str, flt: EventFilter, fmt: str) -> Iterator[bytes]:
    events = console.svc.store.iter_events(account_id=account_id, flt=flt, descending=True)
    if fmt == "ndjson":
        batch: list[bytes] = []
        for event in events:
            batch.append(event.body + b"\n")
            if len(batch) >= 500:
                yield b"".join(batch)
                batch.clear()
        yield b"".join(batch)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for n, event in enumerate(events, 1):
        writer.writerow(csv_row(parse_body(event.body)))
        if n % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def export(console: Console, request: Request) -> Response:
    """The whole filtered set, newest first, streamed as CSV or NDJSON (no row limit)."""
    who = await console.signed_in(request, SEARCH)
    fmt = request.query_params.get("format", "csv")
    if fmt not in ("csv", "ndjson"):
        raise PageError(400, "Cannot export", "format must be csv or ndjson")
    state = _state(console, request)
    flt, _ = await console.bounded(request, _filter, console, state, who)
    chunks = _export_chunks(console, who.account_id, flt, fmt)
    sentinel: Any = object()
    first = await console.bounded(request, next, chunks, sentinel)
    timeout = console.svc.settings.query_timeout_s

    async def body() -> AsyncIterator[bytes]:
        if first is not sentinel:
            yield first
        async for chunk in stream_bounded(chunks, timeout_s=timeout):
            yield chunk

    media = "application/x-ndjson" if fmt == "ndjson" else "text/csv; charset=utf-8"
    name = f"events-{format_wire_time(state.start_ms)}-{format_wire_time(state.end_ms)}.{fmt}".replace(
        ":", ""
    )
    headers = {**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body(), media_type=media, headers=headers)


def _around(state_ms: int, pairs: list[tuple[str, str]]) -> str:
    state = SearchState(start_ms=state_ms - AROUND_MS, end_ms=state_ms + AROUND_MS, filters=tuple(pairs))
    return state.query()


def _event_and_mark(
    console: Console, request: Request, event_id: str
) -> tuple[Principal, StoredEvent, MarkView]:
    """The event page's reads in one worker call: who, the stored event, its integrity mark."""
    who = console.check(request, SEARCH)
    stored = find_event(console, who.account_id, event_id)
    if stored is None:
        raise PageError(404, "No such event", "This account holds no event with that ID.")
    return who, stored, mark_of(console, who.account_id, stored)


async def event_page(console: Console, request: Request) -> Response:
    event_id = request.path_params["event_id"]
    who, stored, mark = await console.bounded(request, _event_and_mark, console, request, event_id)
    view = event_view(stored)
    t = stored.event_time_ms
    links: list[tuple[str, str]] = []
    if view.request:
        links.append(("Same request", _around(t, [("RequestId", view.request)])))
    if view.key:
        links.append(("Same AccessKey", _around(t, [("EventAccessKeyId", view.key)])))
    if view.ip:
        links.append(("Same source IP", _around(t, [("SourceIpAddress", view.ip)])))
    if view.user:
        links.append(("Same user", _around(t, [("User", view.user)])))
    for _rtype, rname in view.resources[:10]:
        if rname:
            links.append((f"Same resource {rname}", _around(t, [("ResourceName", rname)])))
    window = SearchState(start_ms=t - AROUND_MS, end_ms=t + AROUND_MS)
    return console.page(
        request,
        "event.html",
        who=who,
        nav="search",
        title=f"{view.name} {view.time}",
        event=view,
        json_text=pretty_json(stored.body),
        links=links,
        around=replace(window).query(),
        mark=mark,
        proof_url=f"{PREFIX}/proof/{quote(stored.event_id, safe='')}",
    )
