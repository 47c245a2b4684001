"""The ASGI application: ``create_app(settings, store)``; no module-level state.

Routes: ``/`` is the ActionTrail RPC gateway (GET and POST), ``/api/v1/...`` the native API,
``/healthz`` the liveness probe, ``/readyz`` the readiness probe (the store answers), ``/metrics``
Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..service.pagetoken import PageTokens
from ..settings import Settings
from ..storage import open_store
from ..storage.base import EventStore, QueryCancelled, StoreError, StoreUnavailable
from ..storage.base import QueryTimeout as StoreQueryTimeout
from .bounded import run_bounded
from .context import Services
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .native_errors import (
    InternalError,
    MethodNotAllowed,
    NativeError,
    NotFound,
    QueryTimeout,
    ServiceUnavailable,
    Unauthorized,
    native_error_response,
)
from .native_params import check_params

__all__ = ["create_app"]

log = logging.getLogger("trailhouse.access")
error_log = logging.getLogger("trailhouse.error")

Endpoint = Callable[[Request, Services], Awaitable[Response]]


def new_native_request_id() -> str:
    return str(uuid.uuid4()).upper()


class AccessLog:
    """One line per request: method, path without the query (V1 signatures live there), status, time.

    The same measurement feeds the metrics, so a request is counted exactly when it is logged.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        request_id = ""

        async def send_wrapper(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"x-acs-request-id":
                        request_id = value.decode()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            state = scope.get("state") or {}
            action = state.get("action", "-")
            log.info(
                "%s %s %s %s %.1fms %s",
                scope["method"],
                scope["path"],
                action,
                status,
                elapsed * 1000,
                request_id or "-",
            )
            if self.metrics is not None:
                self.metrics.observe(scope, status, elapsed)


#: The methods routed to the RPC gateway: it answers the unsupported ones with UnsupportedHTTPMethod.
RPC_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


class App(Starlette):
    """The Starlette app, except that RPC requests at ``/`` go straight to the gateway.

    They skip Starlette's routing and middleware stack, which cost about as much as the gateway's
    own work for a small LookupEvents page. The same pieces are applied by hand, so the answer is
    identical: the access log line, and a plain 500 if the gateway itself were to raise.
    """

    def __init__(self, *, rpc: ASGIApp, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rpc = ServerErrorMiddleware(AccessLog(rpc, metrics))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/"
            and not scope.get("root_path")
            and scope["method"] in RPC_METHODS
        ):
            scope["app"] = self
            await self._rpc(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


#: An answer to a client that has gone (nginx's "client closed request"): it is never read, only logged.
CLIENT_GONE = 499


def _native(
    endpoint: Endpoint, svc: Services, *, route: str, action: str
) -> Callable[[Request], Awaitable[Response]]:
    """A native endpoint with its error handling: every failure is a JSON error, never a bare 500."""

    async def handle(request: Request) -> Response:
        request_id = new_native_request_id()
        state = request.scope.setdefault("state", {})
        state.update(route=route, action=action, request_id=request_id)
        try:
            response = await endpoint(request, svc)
        except NativeError as err:
            failure = err
        except (QueryCancelled, ClientDisconnect):
            state["error_code"] = "ClientGone"
            return Response(status_code=CLIENT_GONE, headers={"x-acs-request-id": request_id})
        except StoreQueryTimeout:
            from .native_search import timeout_message

            error_log.warning("query timeout (request %s)", request_id)
            state["store_error"] = "QueryTimeout"
            failure = QueryTimeout(timeout_message(svc.settings.query_timeout_s))
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
            response.headers.setdefault("x-acs-request-id", request_id)
            return response
        state["error_code"] = failure.code
        return native_error_response(failure, request_id)

    return handle


#: The query parameters of POST /api/v1/events (its handler lives in native_ingest).
INGEST_PARAMS = frozenset({"atomic"})


async def events(request: Request, svc: Services) -> Response:
    """``/api/v1/events``: one route for both methods, so a 405 names both in ``Allow``."""
    from . import native_ingest, native_search

    if request.method == "POST":
        request.state.action = "IngestEvents"
        check_params(request.query_params.multi_items(), INGEST_PARAMS)
        return await native_ingest.ingest_events(request, svc)
    request.state.action = "SearchEvents"
    return await native_search.search_events(request, svc)


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
        reason = f"the store did not answer within {READY_TIMEOUT_S:g} s"
    except StoreError as exc:
        error_log.warning("readiness: store failed: %s", exc)
        reason = "the store is unavailable"
    else:
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")
    request.state.error_code = "ServiceUnavailable"
    return Response(
        orjson.dumps({"status": "unavailable", "reason": reason}),
        status_code=503,
        media_type="application/json",
    )


def _metrics_endpoint(metrics: Metrics) -> Endpoint:
    async def serve_metrics(request: Request, svc: Services) -> Response:
        if not metrics.authorised(request.headers.get("authorization", "")):
            raise Unauthorized("send the metrics token as 'Authorization: Bearer <TRAILHOUSE_METRICS_TOKEN>'")
        return Response(metrics.render(), headers={"content-type": CONTENT_TYPE_LATEST})

    return serve_metrics


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no route, wrong method) in the native error shape."""
    assert isinstance(exc, HTTPException)
    request_id = new_native_request_id()
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
        err = NativeError(exc.status_code, "BadRequest", str(exc.detail))
    state["error_code"] = err.code
    return native_error_response(err, request_id, headers)


MAINTENANCE_INTERVAL_S = 3600


async def _maintain_forever(store: EventStore) -> None:
    """Partitions ahead and past retention, statistics: at start, then hourly, on every node."""
    from starlette.concurrency import run_in_threadpool

    from ..model.times import now_ms

    while True:
        try:
            for line in await run_in_threadpool(lambda: store.maintain(now_ms=now_ms())):
                error_log.info("maintenance: %s", line)
        except StoreError as exc:  # a busy lock or a lost connection: the next round tries again
            error_log.warning("maintenance failed: %s", exc)
        await asyncio.sleep(MAINTENANCE_INTERVAL_S)


def create_app(
    settings: Settings, store: EventStore | None = None, *, close_store: bool | None = None
) -> Starlette:
    """Build the app. A store passed in stays the caller's to close unless ``close_store`` says otherwise."""
    from . import gateway, native_search  # imported here: they import the operation table

    owns_store = store is None if close_store is None else close_store
    store = (
        store if store is not None else open_store(settings.db_url, retention_days=settings.retention_days)
    )
    svc = Services(settings=settings, store=store, page_tokens=PageTokens.for_store(store))
    limiter = gateway.build_gateway(svc)
    metrics = Metrics(token=settings.metrics_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        housekeeping = asyncio.create_task(_maintain_forever(store))
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            limiter.close()
            if owns_store:
                store.close()

    routes = [
        # Only reached when App.__call__ does not take the request (a root_path is set).
        Route("/", limiter, methods=list(RPC_METHODS)),
        Route("/healthz", _native(healthz, svc, route="/healthz", action="Healthz"), methods=["GET"]),
        Route("/readyz", _native(readyz, svc, route="/readyz", action="Readyz"), methods=["GET"]),
        Route(
            "/metrics",
            _native(_metrics_endpoint(metrics), svc, route="/metrics", action="Metrics"),
            methods=["GET"],
        ),
        Route(
            "/api/v1/events",
            _native(events, svc, route="/api/v1/events", action="SearchEvents"),
            methods=["GET", "POST"],
        ),
        Route(
            "/api/v1/summary",
            _native(native_search.summary, svc, route="/api/v1/summary", action="Summary"),
            methods=["GET"],
        ),
        Route(
            "/api/v1/access-keys/{access_key_id}/report",
            _native(
                native_search.access_key_report,
                svc,
                route="/api/v1/access-keys/{access_key_id}/report",
                action="AccessKeyReport",
            ),
            methods=["GET"],
        ),
        Route(
            "/api/v1/openapi.json",
            _native(native_search.openapi_document, svc, route="/api/v1/openapi.json", action="OpenAPI"),
            methods=["GET"],
        ),
    ]
    app = App(
        rpc=limiter,
        metrics=metrics,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.services = svc
    app.state.gateway = limiter
    app.state.metrics = metrics
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def app_from_env() -> Starlette:
    """One worker of ``trailhouse serve --workers N``: its settings come from the environment."""
    return create_app(Settings.from_env())
