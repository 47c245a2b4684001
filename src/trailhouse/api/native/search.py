"""The native read API: search without the cloud's limits, streaming export, summaries, reports.

Authenticated with a bearer token that has the ``read`` scope; every answer is scoped to one
account (the token's, or the one named by ``?account=`` among the token's accounts). Every store
call runs under the request's time limit (``run_bounded``, TRAILHOUSE_QUERY_TIMEOUT_S) and stops
when the client leaves.
"""

from __future__ import annotations

import csv
import io
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...model.credentials import ApiToken, TokenScope
from ...model.event_text import parse_body
from ...model.query import EventFilter, StoredEvent
from ...model.times import DAY_MS, TimeFormatError, format_wire_time, now_ms, parse_event_time
from ...render.events_csv import CSV_COLUMNS, csv_row
from ...service.events import LookupRejected, lookup_events
from ...service.pagetoken import query_digest
from ...service.search import (
    FILTER_PARAMS,
    PREFIXABLE,
    SearchParamError,
    build_search_filter,
    window_notice,
)
from ...storage.base import QueryCancelled, StoreError, StoreUnavailable
from ...storage.base import QueryTimeout as StoreQueryTimeout
from ..bounded import run_bounded, stream_bounded
from ..context import Services
from ..wire import has_nul, one_of, plain_bool, plain_int
from .auth import authenticate_token, choose_account
from .errors import (
    AccessKeyNotFound,
    InternalError,
    InvalidParameter,
    NativeError,
    QueryTimeout,
    ServiceUnavailable,
)
from .openapi import openapi_spec
from .params import check_params

__all__ = [
    "REPORT_PARAMS",
    "SEARCH_PARAMS",
    "SUMMARY_PARAMS",
    "access_key_report",
    "openapi_document",
    "search_events",
    "summary",
]

error_log = logging.getLogger("trailhouse.error")
T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_FORMATS = ("json", "ndjson", "csv")
REPORT_FORMATS = ("json", "html")

#: The query parameters of each read endpoint; any other name is answered 400 UnknownParameter.
WINDOW_PARAMS = ("account", "start", "end")
FILTER_NAMES = tuple(FILTER_PARAMS) + tuple(
    f"{n}.prefix" for n, a in FILTER_PARAMS.items() if a in PREFIXABLE
)
SEARCH_PARAMS = frozenset((*WINDOW_PARAMS, "failed", "order", "limit", "cursor", "format", *FILTER_NAMES))
SEARCH_LISTED = (
    *WINDOW_PARAMS,
    "failed",
    "order",
    "limit",
    "cursor",
    "format",
    *FILTER_PARAMS,
    "<Filter>.prefix",
)
SUMMARY_PARAMS = frozenset(WINDOW_PARAMS)
REPORT_PARAMS = frozenset(("account", "since", "format"))

#: The times ISO 8601 can write back (years 1 to 9999): a window beyond them could not be answered.
MIN_TIME_MS, MAX_TIME_MS = -62_135_596_800_000, 253_402_300_799_999


def _time(value: str | None, name: str, default: int) -> int:
    if not value:
        return default
    try:
        ms = parse_event_time(value)
    except (TimeFormatError, ValueError, OverflowError) as exc:
        raise InvalidParameter(f"{name}: {exc}") from None
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise InvalidParameter(f"{name}: {value!r} is outside the years 0001 to 9999 (UTC)")
    return ms


def _leak_time(value: str | None) -> int | None:
    """The report's ``since``: a day (``YYYY-MM-DD``, UTC) or a time; absent, the service derives it."""
    from ...service.report.leak_time import parse_leak_time

    if not value:
        return None
    try:
        ms = parse_leak_time(value)
    except (TimeFormatError, ValueError, OverflowError) as exc:
        raise InvalidParameter(f"since: {exc}") from None
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise InvalidParameter(f"since: {value!r} is outside the years 0001 to 9999 (UTC)")
    return ms


async def _bounded(request: Request, svc: Services, fn: Callable[..., T], *args: Any) -> T:
    """Store work of this request: off the loop, within the time limit, cancelled if the client leaves."""
    return await run_bounded(fn, *args, timeout_s=svc.settings.query_timeout_s, receive=request.receive)


async def _reader(
    request: Request, svc: Services, allowed: frozenset[str], **listing: Any
) -> tuple[ApiToken, str]:
    token = await _bounded(request, svc, authenticate_token, request, svc.store, TokenScope.READ)
    check_params(request.query_params.multi_items(), allowed, **listing)
    return token, choose_account(token, request.query_params.get("account"))


def parse_filter(request: Request, svc: Services, account_id: str) -> tuple[EventFilter, dict[str, Any]]:
    """The filter a native query asks for, and the canonical parameters a cursor is bound to."""
    params = request.query_params
    now = now_ms()
    end = _time(params.get("end"), "end", now)
    start = _time(params.get("start"), "start", now - svc.settings.retention_days * DAY_MS)
    failed_text = params.get("failed")
    failed = None if failed_text is None else plain_bool(failed_text)
    if failed_text is not None and failed is None:
        raise InvalidParameter("failed must be true or false")
    try:
        flt, bound = build_search_filter(
            svc.store,
            account_id=account_id,
            start_ms=start,
            end_ms=end,
            pairs=params.multi_items(),
            failed=failed,
        )
    except SearchParamError as exc:
        raise InvalidParameter(str(exc)) from None
    bound["order"] = params.get("order", "desc")
    return flt, bound


def _stored(svc: Services, account_id: str, flt: EventFilter) -> dict[str, Any]:
    s = svc.store.summarize(account_id=account_id, start_ms=flt.start_ms, end_ms=flt.end_ms)
    stored: dict[str, Any] = {
        "count": s.count,
        "earliest": format_wire_time(s.earliest_ms) if s.earliest_ms is not None else None,
        "latest": format_wire_time(s.latest_ms) if s.latest_ms is not None else None,
    }
    notice = window_notice(
        svc.store,
        account_id=account_id,
        start_ms=flt.start_ms,
        end_ms=flt.end_ms,
        stored_count=s.count,
        now_ms=now_ms(),
        retention_days=svc.settings.retention_days,
    )
    return {"stored": stored, "notice": notice}


def _descending(request: Request) -> bool:
    order = one_of(request.query_params.get("order", "desc"), ("asc", "desc"))
    if order is None:
        raise InvalidParameter("order must be asc or desc")
    return order == "desc"


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    limit = plain_int(raw)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


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
        writer.writerow(csv_row(parse_body(event.body)))
        if n % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _events_json(events: list[StoredEvent]) -> bytes:
    return b"[" + b",".join(e.body for e in events) + b"]"


def _header_value(text: str) -> str:
    """Printable ASCII as is; anything else percent-encoded (a header holds latin-1 and no newline)."""
    if text.isascii() and text.isprintable():
        return text
    return urllib.parse.quote(text, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


def _window(flt: EventFilter) -> dict[str, str]:
    return {"start": format_wire_time(flt.start_ms), "end": format_wire_time(flt.end_ms)}


def _with_notice(payload: dict[str, Any], notice: str | None) -> dict[str, Any]:
    if notice:
        payload["notice"] = notice
    return payload


async def search_events(request: Request, svc: Services) -> Response:
    _, account_id = await _reader(request, svc, SEARCH_PARAMS, families=FILTER_PARAMS, listed=SEARCH_LISTED)
    fmt = one_of(request.query_params.get("format", "json"), EXPORT_FORMATS)
    if fmt is None:
        raise InvalidParameter(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    descending = _descending(request)
    limit = _limit(request) if fmt == "json" else DEFAULT_LIMIT
    flt, bound = await _bounded(request, svc, parse_filter, request, svc, account_id)
    facts = await _bounded(request, svc, _stored, svc, account_id, flt)
    stored, notice = facts["stored"], facts["notice"]
    if fmt != "json":
        request.scope.setdefault("state", {})["action"] = "ExportEvents"
        return await _export_response(request, svc, account_id, flt, descending, fmt, stored, notice)
    try:
        page = await _bounded(
            request,
            svc,
            lambda: lookup_events(
                svc.store,
                svc.page_tokens,
                account_id=account_id,
                flt=flt,
                descending=descending,
                limit=limit,
                next_token=request.query_params.get("cursor"),
                token_kind="native",
                digest=query_digest(bound),
            ),
        )
    except LookupRejected as exc:
        raise InvalidParameter(str(exc)) from None
    head = orjson.dumps(
        _with_notice(
            {
                "account": account_id,
                "window": _window(flt),
                "stored": stored,
                "count": len(page.events),
                "nextCursor": page.next_token,
            },
            notice,
        )
    )
    body = head[:-1] + b',"events":' + _events_json(page.events) + b"}"
    return Response(body, media_type="application/json")


async def _export_response(
    request: Request,
    svc: Services,
    account_id: str,
    flt: EventFilter,
    descending: bool,
    fmt: str,
    stored: dict[str, Any],
    notice: str | None,
) -> Response:
    """A whole result set, streamed: what the store holds travels in the headers.

    The first chunk is read before answering, so a query that fails or times out at once still
    gets its 503. A failure later cannot change the status any more: the stream ends with a
    trailer the client can recognise (``export_trailer``), never silently short.
    """
    headers = {
        "x-trailhouse-account": _header_value(account_id),
        "x-trailhouse-stored-count": str(stored["count"]),
        "x-trailhouse-stored-earliest": stored["earliest"] or "",
        "x-trailhouse-stored-latest": stored["latest"] or "",
        "content-disposition": f'attachment; filename="events.{fmt}"',
    }
    if notice:
        headers["x-trailhouse-notice"] = _header_value(notice)
    media = "application/x-ndjson" if fmt == "ndjson" else "text/csv; charset=utf-8"
    iterator = _export(svc, account_id, flt, descending, fmt)
    sentinel: Any = object()
    first = await _bounded(request, svc, next, iterator, sentinel)
    if first is sentinel:
        first = b""
    state = request.scope.setdefault("state", {})
    return StreamingResponse(
        _rest_of_export(first, iterator, svc, fmt, state), media_type=media, headers=headers
    )


async def _rest_of_export(
    first: bytes, iterator: Iterator[bytes], svc: Services, fmt: str, state: dict[str, Any]
) -> AsyncIterator[bytes]:
    yield first
    # The streaming response itself watches for the disconnect and cancels this generator.
    steps = stream_bounded(iterator, timeout_s=svc.settings.query_timeout_s)
    request_id = state.get("request_id", "")
    failure: NativeError
    try:
        async for chunk in steps:
            yield chunk
        return
    except QueryCancelled:
        return
    except StoreQueryTimeout:
        store_error = "QueryTimeout"
        limit_s = svc.settings.query_timeout_s
        failure = QueryTimeout.after(limit_s, " The export stopped here; it is incomplete.")
        error_log.warning("export stopped by the time limit (request %s)", request_id)
    except StoreUnavailable as exc:
        store_error = "StoreUnavailable"
        failure = ServiceUnavailable("the store became unavailable; the export is incomplete")
        error_log.warning("export: store unavailable (request %s): %s", request_id, exc)
    except Exception as exc:
        store_error = "StoreError" if isinstance(exc, StoreError) else ""
        failure = InternalError("internal error; the export is incomplete")
        error_log.exception("export failed (request %s)", request_id)
    state["error_code"] = failure.code
    if store_error:
        state["store_error"] = store_error
    yield export_trailer(fmt, failure, request_id)


def export_trailer(fmt: str, err: NativeError, request_id: str) -> bytes:
    """The error that cut a stream short, as its last NDJSON line or CSV row."""
    if fmt == "ndjson":
        return orjson.dumps(err.body(request_id)) + b"\n"
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["#error", err.code, err.message, request_id])
    return buffer.getvalue().encode()


async def summary(request: Request, svc: Services) -> Response:
    _, account_id = await _reader(request, svc, SUMMARY_PARAMS)
    now = now_ms()
    params = request.query_params
    end = _time(params.get("end"), "end", now)
    start = _time(params.get("start"), "start", now - svc.settings.retention_days * DAY_MS)
    if start > end:
        raise InvalidParameter("start must not be later than end")
    flt = EventFilter(start, end)
    facts = await _bounded(request, svc, _stored, svc, account_id, flt)
    return Response(
        orjson.dumps(
            _with_notice(
                {"account": account_id, "window": _window(flt), "stored": facts["stored"]}, facts["notice"]
            )
        ),
        media_type="application/json",
    )


async def access_key_report(request: Request, svc: Services) -> Response:
    from ...render.report_html import report_to_html
    from ...render.report_json import report_to_json
    from ...service.access_key_report import build_report

    _, account_id = await _reader(request, svc, REPORT_PARAMS)
    key_id = request.path_params["access_key_id"]
    if has_nul(key_id):
        raise InvalidParameter("the AccessKey id may not contain NUL characters")
    fmt = one_of(request.query_params.get("format", "json"), REPORT_FORMATS)
    if fmt is None:
        raise InvalidParameter("format must be json or html")
    now = now_ms()
    since = _leak_time(request.query_params.get("since"))
    report = await _bounded(
        request,
        svc,
        lambda: build_report(
            svc.store,
            account_id=account_id,
            access_key_id=key_id,
            since_ms=since,
            now_ms=now,
            window_start_ms=now - svc.settings.usage_window_days * DAY_MS,
        ),
    )
    if not report.found:
        raise AccessKeyNotFound(report.notice, accessKeyId=key_id, account=account_id)
    if fmt == "html":
        return Response(report_to_html(report), media_type="text/html; charset=utf-8")
    return Response(orjson.dumps(report_to_json(report)), media_type="application/json")


async def openapi_document(request: Request, svc: Services) -> Response:
    check_params(request.query_params.multi_items(), ())
    return Response(orjson.dumps(openapi_spec()), media_type="application/json")
