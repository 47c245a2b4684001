"""``POST /api/v1/events``: ingest over HTTP, authenticated with an ingest token."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...model.credentials import TokenScope
from ...service.ingest import BatchTooLarge as DecodedTooLarge
from ...service.ingest import (
    IngestLimits,
    UnreadableInput,
    decode_events,
    gunzip,
    ingest_items,
    is_gzip,
)
from ..context import Services
from .auth import authenticate_token
from .errors import BadRequest, BatchTooLarge, InvalidParameter, MalformedBody, PayloadTooLarge

__all__ = ["INGEST_PARAMS", "ingest_events"]

#: The query parameters of POST /api/v1/events; any other name is answered 400 UnknownParameter.
INGEST_PARAMS = frozenset({"atomic"})


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


async def ingest_events(request: Request, svc: Services) -> Response:
    token = await run_in_threadpool(authenticate_token, request, svc.store, TokenScope.INGEST)
    limits = svc.settings
    body = await read_limited_body(request, limits.max_body_bytes)
    atomic = _flag(request.query_params.get("atomic", "false"), "atomic")
    try:
        if request.headers.get("content-encoding", "").lower() == "gzip" or is_gzip(body):
            body = gunzip(body, limits.max_body_bytes)
        items = decode_events(body)
    except DecodedTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except UnreadableInput as exc:
        raise MalformedBody(str(exc)) from None
    if len(items) > limits.max_batch_events:
        raise BatchTooLarge(
            f"the batch has {len(items)} events; the limit is {limits.max_batch_events} per request"
        )
    report = await run_in_threadpool(
        ingest_items,
        svc.store,
        items,
        may_write=token.may_use,
        atomic=atomic,
        limits=IngestLimits.of(limits),
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
