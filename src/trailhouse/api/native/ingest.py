"""``POST /api/v1/events``: ingest over HTTP, authenticated with an ingest token."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...model.credentials import TokenScope
from ...service.ingest import BatchTooLarge as DecodedTooLarge
from ...service.ingest import (
    IngestLimits,
    IngestReport,
    TooManyEvents,
    UnreadableInput,
    decode_body,
    ingest_items,
    is_gzip,
    store_valid,
)
from ...service.ingest_pool import DecoderLost, Writable, unpack
from ...storage.base import EventLog
from ...storage.base import QueryTimeout as StoreQueryTimeout
from ..bounded import run_bounded
from ..context import Services
from .auth import authenticate_token
from .errors import (
    BadRequest,
    BatchTooLarge,
    InvalidParameter,
    MalformedBody,
    PayloadTooLarge,
    QueryTimeout,
    ServiceUnavailable,
)

__all__ = ["INGEST_PARAMS", "ingest_events"]

error_log = logging.getLogger("trailhouse.error")

#: The query parameters of POST /api/v1/events; any other name is answered 400 UnknownParameter.
INGEST_PARAMS = frozenset({"atomic"})

T = TypeVar("T")


async def read_limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    return bytes(chunks)


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def _flag(raw: str, name: str) -> bool:
    # A misspelt "true" must not quietly store a batch non-atomically.
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidParameter(f"{name} must be true or false, got {raw[:40]!r}")


def _store_decoded(store: EventLog, data: bytes, atomic: bool) -> IngestReport:
    done = unpack(data)
    return store_valid(store, [done.unit], done.rejected, done.warnings, atomic=atomic)


async def _store_work(request: Request, svc: Services, fn: Callable[..., T], *args: Any) -> T:
    """The request's store work (the token check, the write) within the query time limit, as for
    every other request: a database that stalls (a connection that answers nothing) gets the
    client a 503 in bounded time rather than no answer. A client that leaves does not stop a write.

    A write stopped or abandoned this way may still commit; the 503 asks for the batch again, and
    ingest is idempotent on eventId, so nothing is lost or doubled.
    """
    limit = svc.settings.query_timeout_s
    try:
        return await run_bounded(fn, *args, timeout_s=limit)
    except StoreQueryTimeout:
        error_log.warning("ingest: the store did not answer within %g s", limit)
        request.scope.setdefault("state", {})["store_error"] = "QueryTimeout"  # for /metrics
        raise QueryTimeout(
            f"the store did not answer within the limit of {limit:g} s (TRAILHOUSE_QUERY_TIMEOUT_S);"
            " send the batch again: events it already stored are counted as duplicates"
        ) from None


async def ingest_events(request: Request, svc: Services) -> Response:
    token = await _store_work(request, svc, authenticate_token, request, svc.store, TokenScope.INGEST)
    limits = svc.settings
    body = await read_limited_body(request, limits.max_body_bytes)
    atomic = _flag(request.query_params.get("atomic", "false"), "atomic")
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip" or is_gzip(body)
    try:
        if svc.decoder is not None:
            # Decoded, judged and packed in a worker process: this one only writes (and answers).
            data = await svc.decoder.decode(body, gzipped=gzipped, may_write=Writable.of(token))
        else:
            items = decode_body(
                body, gzipped=gzipped, max_bytes=limits.max_body_bytes, max_events=limits.max_batch_events
            )
    except DecodedTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except UnreadableInput as exc:
        raise MalformedBody(str(exc)) from None
    except TooManyEvents as exc:
        raise BatchTooLarge(str(exc)) from None
    except DecoderLost as exc:
        # The operator should know (a worker killed by the OOM killer leaves no other trace here).
        error_log.warning("ingest: %s (request %s)", exc, request.scope.get("state", {}).get("request_id"))
        raise ServiceUnavailable(str(exc)) from None
    if svc.decoder is not None:
        report = await _store_work(request, svc, _store_decoded, svc.store, data, atomic)
    else:
        report = await _store_work(
            request,
            svc,
            functools.partial(
                ingest_items,
                svc.store,
                items,
                may_write=token.may_use,
                atomic=atomic,
                limits=IngestLimits.of(limits),
            ),
        )
    status = 422 if atomic and report.rejected else 200
    request.scope.setdefault("state", {})["ingest"] = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": len(report.rejected),
        "warnings": report.warned_events,
    }
    payload = report.to_dict()
    if status == 422:
        payload["message"] = "atomic batch rejected: nothing was stored"
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
