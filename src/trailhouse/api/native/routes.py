"""The native routes (``/api/v1``, the probes, ``/metrics``) and the one place their errors are answered.

Every native endpoint is wrapped by ``endpoint``: it gives the request its id, turns whatever the
endpoint raised into a ``NativeError`` (store failures, the client leaving, anything unexpected)
and renders it; Starlette's own 404 and 405 go through ``http_error`` to the same renderer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ...storage.base import QueryCancelled, StoreError, StoreUnavailable
from ...storage.base import QueryTimeout as StoreQueryTimeout
from ..bounded import run_bounded
from ..context import Services
from ..metrics import CONTENT_TYPE_LATEST, Metrics
from ..wire import CLIENT_GONE, REQUEST_ID_HEADER, new_request_id
from . import ingest, insights, search
from .errors import (
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NativeError,
    NotFound,
    NotReady,
    QueryTimeout,
    ServiceUnavailable,
    Unauthorized,
    error_response,
)
from .log import LOG_OPERATIONS, log_routes
from .params import check_params

__all__ = ["OPERATIONS", "Endpoint", "endpoint", "http_error", "native_routes"]

error_log = logging.getLogger("trailhouse.error")

Endpoint = Callable[[Request, Services], Awaitable[Response]]

#: The operations (``state["action"]``) of the native routes, as the metrics label them.
OPERATIONS = frozenset(
    {
        "IngestEvents",
        "SearchEvents",
        "ExportEvents",
        "Summary",
        "AccessKeyReport",
        "ListInsights",
        "OpenAPI",
        "Healthz",
        "Readyz",
        "Metrics",
        *LOG_OPERATIONS,
    }
)


def endpoint(
    fn: Endpoint, svc: Services, *, route: str, action: str
) -> Callable[[Request], Awaitable[Response]]:
    """A native endpoint with its error handling: every failure is a JSON error, never a bare 500."""

    async def handle(request: Request) -> Response:
        request_id = new_request_id()
        state = request.scope.setdefault("state", {})
        state.update(route=route, action=action, request_id=request_id)
        try:
            response = await fn(request, svc)
        except NativeError as err:
            failure = err
        except (QueryCancelled, ClientDisconnect):
            state["error_code"] = "ClientGone"
            return Response(status_code=CLIENT_GONE, headers={REQUEST_ID_HEADER: request_id})
        except StoreQueryTimeout:
            error_log.warning("query timeout (request %s)", request_id)
            state["store_error"] = "QueryTimeout"
            failure = QueryTimeout.after(svc.settings.query_timeout_s)
        except StoreUnavailable as exc:
            error_log.warning("store unavailable (request %s): %s", request_id, exc)
            state["store_error"] = "StoreUnavailable"
            failure = ServiceUnavailable()
        except StoreError:
            error_log.exception("store error (request %s)", request_id)
            state["store_error"] = "StoreError"
            failure = InternalError()
        except Exception:
            error_log.exception("unexpected error (request %s)", request_id)
            failure = InternalError()
        else:
            response.headers.setdefault(REQUEST_ID_HEADER, request_id)
            return response
        state["error_code"] = failure.code
        return error_response(failure, request_id)

    return handle


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no route, wrong method) in the native error shape."""
    assert isinstance(exc, HTTPException)
    request_id = new_request_id()
    state = request.scope.setdefault("state", {})
    state.setdefault("route", "unmatched")
    headers = dict(exc.headers or {})
    err: NativeError
    if exc.status_code == 404:
        err = NotFound(
            f"there is nothing at {request.url.path}; the native API is described at /api/v1/openapi.json"
        )
    elif exc.status_code == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        err = MethodNotAllowed(f"{request.url.path} does not answer {request.method}; it answers {allowed}")
    else:
        err = BadRequest(str(exc.detail), status=exc.status_code)
    state["error_code"] = err.code
    return error_response(err, request_id, headers)


async def events(request: Request, svc: Services) -> Response:
    """``/api/v1/events``: one route for both methods, so a 405 names both in ``Allow``."""
    if request.method == "POST":
        request.state.action = "IngestEvents"
        check_params(request.query_params.multi_items(), ingest.INGEST_PARAMS)
        return await ingest.ingest_events(request, svc)
    request.state.action = "SearchEvents"
    return await search.search_events(request, svc)


async def healthz(request: Request, svc: Services) -> Response:
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


#: A readiness probe must answer before the orchestrator's own probe timeout (often 1–5 s).
READY_TIMEOUT_S = 2.0


async def readyz(request: Request, svc: Services) -> Response:
    """Ready when the store answers a cheap indexed read within READY_TIMEOUT_S.

    The reason of a failure is generic on purpose (the probe is unauthenticated); the log has it all.
    """
    try:
        # A token no secret hashes to: one index probe that needs a live connection and the schema.
        await run_bounded(svc.store.find_token, bytes(32), timeout_s=READY_TIMEOUT_S)
    except StoreQueryTimeout:
        raise NotReady(f"the store did not answer within {READY_TIMEOUT_S:g} s") from None
    except StoreError as exc:
        error_log.warning("readiness: store failed: %s", exc)
        raise NotReady("the store is unavailable") from None
    return Response(orjson.dumps({"status": "ready"}), media_type="application/json")


def _metrics_endpoint(metrics: Metrics) -> Endpoint:
    async def serve_metrics(request: Request, svc: Services) -> Response:
        if not metrics.authorised(request.headers.get("authorization", "")):
            raise Unauthorized("send the metrics token as 'Authorization: Bearer <TRAILHOUSE_METRICS_TOKEN>'")
        return Response(metrics.render(), headers={"content-type": CONTENT_TYPE_LATEST})

    return serve_metrics


def native_routes(svc: Services, metrics: Metrics) -> list[Route]:
    """Every route of the native wire, each wrapped by ``endpoint`` under its route and action."""
    table: list[tuple[str, Endpoint, str, list[str]]] = [
        ("/healthz", healthz, "Healthz", ["GET"]),
        ("/readyz", readyz, "Readyz", ["GET"]),
        ("/metrics", _metrics_endpoint(metrics), "Metrics", ["GET"]),
        ("/api/v1/events", events, "SearchEvents", ["GET", "POST"]),
        ("/api/v1/summary", search.summary, "Summary", ["GET"]),
        ("/api/v1/access-keys/{access_key_id}/report", search.access_key_report, "AccessKeyReport", ["GET"]),
        ("/api/v1/openapi.json", search.openapi_document, "OpenAPI", ["GET"]),
        *log_routes(),
        ("/api/v1/insights", insights.list_insights, "ListInsights", ["GET"]),
    ]
    return [
        Route(path, endpoint(fn, svc, route=path, action=action), methods=methods)
        for path, fn, action, methods in table
    ]
