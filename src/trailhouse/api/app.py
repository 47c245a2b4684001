"""The ASGI application: ``create_app(settings, store)``; no module-level state.

Routes: ``/`` is the ActionTrail RPC gateway (GET and POST), ``/api/v1/...`` the native API,
``/healthz`` the liveness probe.
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
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..service.pagetoken import PageTokens
from ..settings import Settings
from ..storage import open_store
from ..storage.base import EventStore, StoreError, StoreUnavailable
from .context import Services
from .native_errors import NativeError, native_error_response

__all__ = ["create_app"]

log = logging.getLogger("trailhouse.access")
error_log = logging.getLogger("trailhouse.error")

Endpoint = Callable[[Request, Services], Awaitable[Response]]


def new_native_request_id() -> str:
    return str(uuid.uuid4()).upper()


class AccessLog:
    """One line per request: method, path without the query (V1 signatures live there), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            state = scope.get("state") or {}
            action = state.get("action", "-")
            log.info(
                "%s %s %s %s %.1fms %s",
                scope["method"],
                scope["path"],
                action,
                status,
                (time.perf_counter() - started) * 1000,
                request_id or "-",
            )


#: The methods routed to the RPC gateway: it answers the unsupported ones with UnsupportedHTTPMethod.
RPC_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


class App(Starlette):
    """The Starlette app, except that RPC requests at ``/`` go straight to the gateway.

    They skip Starlette's routing and middleware stack, which cost about as much as the gateway's
    own work for a small LookupEvents page. The same pieces are applied by hand, so the answer is
    identical: the access log line, and a plain 500 if the gateway itself were to raise.
    """

    def __init__(self, *, rpc: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rpc = ServerErrorMiddleware(AccessLog(rpc))

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


def _native(endpoint: Endpoint, svc: Services) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        request_id = new_native_request_id()
        try:
            response = await endpoint(request, svc)
        except NativeError as err:
            return native_error_response(err, request_id)
        except StoreUnavailable as exc:
            error_log.warning("store unavailable (request %s): %s", request_id, exc)
            return native_error_response(
                NativeError(503, "ServiceUnavailable", "the store is unavailable"), request_id
            )
        except StoreError:
            error_log.exception("store error (request %s)", request_id)
            return native_error_response(NativeError(500, "InternalError", "internal error"), request_id)
        except Exception:
            error_log.exception("unexpected error (request %s)", request_id)
            return native_error_response(NativeError(500, "InternalError", "internal error"), request_id)
        response.headers.setdefault("x-acs-request-id", request_id)
        return response

    return handle


async def healthz(request: Request, svc: Services) -> Response:
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


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
    from . import gateway, native_ingest, native_search  # imported here: they import the operation table

    owns_store = store is None if close_store is None else close_store
    store = (
        store if store is not None else open_store(settings.db_url, retention_days=settings.retention_days)
    )
    svc = Services(settings=settings, store=store, page_tokens=PageTokens.for_store(store))
    limiter = gateway.build_gateway(svc)

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
        Route("/healthz", _native(healthz, svc), methods=["GET"]),
        Route("/api/v1/events", _native(native_ingest.ingest_events, svc), methods=["POST"]),
        Route("/api/v1/events", _native(native_search.search_events, svc), methods=["GET"]),
        Route("/api/v1/summary", _native(native_search.summary, svc), methods=["GET"]),
        Route(
            "/api/v1/access-keys/{access_key_id}/report",
            _native(native_search.access_key_report, svc),
            methods=["GET"],
        ),
        Route("/api/v1/openapi.json", _native(native_search.openapi_document, svc), methods=["GET"]),
    ]
    app = App(rpc=limiter, routes=routes, lifespan=lifespan)
    app.state.services = svc
    app.state.gateway = limiter
    app.add_middleware(AccessLog)
    return app


def app_from_env() -> Starlette:
    """One worker of ``trailhouse serve --workers N``: its settings come from the environment."""
    return create_app(Settings.from_env())
