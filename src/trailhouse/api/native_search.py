"""The native read API: search without the cloud's limits, streaming export, summaries, reports.

Authenticated with a bearer token that has the ``read`` scope; every answer is scoped to one
account (the token's, or the one named by ``?account=`` among the token's accounts).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..model.credentials import TokenScope
from ..model.query import EventFilter, StoredEvent
from ..model.times import DAY_MS, TimeFormatError, format_wire_time, now_ms, parse_event_time
from ..service.events import LookupRejected, lookup_events
from ..service.pagetoken import query_digest
from ..service.search import CSV_COLUMNS, SearchParamError, build_search_filter, csv_row
from .context import Services
from .native_auth import authenticate_token, choose_account
from .native_errors import NativeError
from .openapi import openapi_spec

__all__ = ["access_key_report", "openapi_document", "search_events", "summary"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_FORMATS = ("json", "ndjson", "csv")


def _bad(message: str) -> NativeError:
    return NativeError(400, "InvalidParameter", message)


def _time(value: str | None, name: str, default: int) -> int:
    if not value:
        return default
    try:
        return parse_event_time(value)
    except TimeFormatError as exc:
        raise _bad(f"{name}: {exc}") from None


def parse_filter(request: Request, svc: Services, account_id: str) -> tuple[EventFilter, dict[str, Any]]:
    """The filter a native query asks for, and the canonical parameters a cursor is bound to."""
    params = request.query_params
    now = now_ms()
    end = _time(params.get("end"), "end", now)
    start = _time(params.get("start"), "start", now - svc.settings.retention_days * DAY_MS)
    failed = params.get("failed")
    if failed is not None and failed.lower() not in ("true", "false"):
        raise _bad("failed must be true or false")
    try:
        flt, bound = build_search_filter(
            svc.store,
            account_id=account_id,
            start_ms=start,
            end_ms=end,
            pairs=params.multi_items(),
            failed=None if failed is None else failed.lower() == "true",
        )
    except SearchParamError as exc:
        raise _bad(str(exc)) from None
    bound["order"] = params.get("order", "desc")
    return flt, bound


def _stored(svc: Services, account_id: str, flt: EventFilter) -> dict[str, Any]:
    s = svc.store.summarize(account_id=account_id, start_ms=flt.start_ms, end_ms=flt.end_ms)
    return {
        "count": s.count,
        "earliest": format_wire_time(s.earliest_ms) if s.earliest_ms is not None else None,
        "latest": format_wire_time(s.latest_ms) if s.latest_ms is not None else None,
    }


def _descending(request: Request) -> bool:
    order = request.query_params.get("order", "desc").lower()
    if order not in ("asc", "desc"):
        raise _bad("order must be asc or desc")
    return order == "desc"


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _bad(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _export(svc: Services, account_id: str, flt: EventFilter, descending: bool, fmt: str) -> Iterator[bytes]:
    events = svc.store.iter_events(account_id=account_id, flt=flt, descending=descending)
    if fmt == "ndjson":
        for event in events:
            yield event.body + b"\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for n, event in enumerate(events, 1):
        writer.writerow(csv_row(orjson.loads(event.body)))
        if n % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _events_json(events: list[StoredEvent]) -> bytes:
    return b"[" + b",".join(e.body for e in events) + b"]"


async def search_events(request: Request, svc: Services) -> Response:
    token = await run_in_threadpool(authenticate_token, request, svc.store, TokenScope.READ)
    account_id = choose_account(token, request.query_params.get("account"))
    fmt = request.query_params.get("format", "json").lower()
    if fmt not in EXPORT_FORMATS:
        raise _bad(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    descending = _descending(request)
    flt, bound = await run_in_threadpool(parse_filter, request, svc, account_id)
    stored = await run_in_threadpool(_stored, svc, account_id, flt)
    if fmt != "json":
        # A whole result set, streamed: what the store holds travels in the headers.
        headers = {
            "x-trailhouse-account": account_id,
            "x-trailhouse-stored-count": str(stored["count"]),
            "x-trailhouse-stored-earliest": stored["earliest"] or "",
            "x-trailhouse-stored-latest": stored["latest"] or "",
            "content-disposition": f'attachment; filename="events.{fmt}"',
        }
        media = "application/x-ndjson" if fmt == "ndjson" else "text/csv; charset=utf-8"
        iterator = _export(svc, account_id, flt, descending, fmt)
        return StreamingResponse(_threaded(iterator), media_type=media, headers=headers)
    try:
        page = await run_in_threadpool(
            lookup_events,
            svc.store,
            svc.page_tokens,
            account_id=account_id,
            flt=flt,
            descending=descending,
            limit=_limit(request),
            next_token=request.query_params.get("cursor"),
            token_kind="native",
            digest=query_digest(bound),
        )
    except LookupRejected as exc:
        raise _bad(str(exc)) from None
    head = orjson.dumps(
        {
            "account": account_id,
            "window": {"start": format_wire_time(flt.start_ms), "end": format_wire_time(flt.end_ms)},
            "stored": stored,
            "count": len(page.events),
            "nextCursor": page.next_token,
        }
    )
    body = head[:-1] + b',"events":' + _events_json(page.events) + b"}"
    return Response(body, media_type="application/json")


async def _threaded(iterator: Iterator[bytes]) -> Any:
    """Drive a blocking iterator from worker threads, so a long export never stalls the event loop."""
    sentinel = object()
    while True:
        chunk = await run_in_threadpool(next, iterator, sentinel)
        if chunk is sentinel:
            return
        yield chunk


async def summary(request: Request, svc: Services) -> Response:
    token = await run_in_threadpool(authenticate_token, request, svc.store, TokenScope.READ)
    account_id = choose_account(token, request.query_params.get("account"))
    flt, _ = await run_in_threadpool(parse_filter, request, svc, account_id)
    stored = await run_in_threadpool(_stored, svc, account_id, flt)
    return Response(
        orjson.dumps(
            {
                "account": account_id,
                "window": {"start": format_wire_time(flt.start_ms), "end": format_wire_time(flt.end_ms)},
                "stored": stored,
            }
        ),
        media_type="application/json",
    )


async def access_key_report(request: Request, svc: Services) -> Response:
    from ..service.access_keys import build_report
    from ..service.report_render import report_to_html, report_to_json

    token = await run_in_threadpool(authenticate_token, request, svc.store, TokenScope.READ)
    account_id = choose_account(token, request.query_params.get("account"))
    key_id = request.path_params["access_key_id"]
    now = now_ms()
    since = _time(request.query_params.get("since"), "since", now - svc.settings.usage_window_days * DAY_MS)
    report = await run_in_threadpool(
        build_report, svc.store, account_id=account_id, access_key_id=key_id, since_ms=since, now_ms=now
    )
    fmt = request.query_params.get("format", "json").lower()
    if fmt == "html":
        return Response(report_to_html(report), media_type="text/html; charset=utf-8")
    if fmt != "json":
        raise _bad("format must be json or html")
    return Response(orjson.dumps(report_to_json(report)), media_type="application/json")


async def openapi_document(request: Request, svc: Services) -> Response:
    return Response(orjson.dumps(openapi_spec()), media_type="application/json")
