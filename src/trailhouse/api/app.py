"""The ASGI application: ``create_app(settings, store)``; no module-level state.

Routes: ``/`` is the ActionTrail RPC gateway (``api/rpc``, GET and POST), ``/api/v1/...`` the
native API (``api/native``), ``/healthz`` the liveness probe, ``/readyz`` the readiness probe (the
store answers), ``/metrics`` Prometheus metrics. This module is the only one in ``api/`` that
knows both wires: it assembles them around what they share (services, metrics, access log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..console import console_mount
from ..delivery.object_storage import open_object_storage
from ..service.ingest import IngestLimits
from ..service.ingest_pool import BatchDecoder
from ..service.pagetoken import PageTokens
from ..settings import Settings
from ..storage import open_store
from ..storage.base import EventStore, StoreError
from .bounded import run_in_background
from .context import Services
from .insights_supervisor import InsightsWorkerProcess
from .insights_worker import status_path
from .metrics import Metrics
from .native.routes import OPERATIONS as NATIVE_OPERATIONS
from .native.routes import http_error, native_routes
from .rpc.dispatch import OPERATIONS as RPC_OPERATIONS
from .rpc.gateway import build_gateway
from .sequencer import sequence_forever
from .wire import REQUEST_ID_HEADER

__all__ = ["create_app"]

log = logging.getLogger("trailhouse.access")
error_log = logging.getLogger("trailhouse.error")
#: What housekeeping did (partitions, statistics): informational, so not on the error logger.
maintenance_log = logging.getLogger("trailhouse.maintenance")

#: The request-id header as ASGI sends it.
_REQUEST_ID = REQUEST_ID_HEADER.encode()


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
                    if name == _REQUEST_ID:
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


MAINTENANCE_INTERVAL_S = 3600


async def _maintain_forever(store: EventStore) -> None:
    """Partitions ahead and past retention, statistics: at start, then hourly, on every node."""
    from ..model.times import now_ms

    while True:
        try:
            # Stopped at shutdown, not waited for: rebuilding a month's indexes may take minutes.
            for line in await run_in_background(lambda: store.maintain(now_ms=now_ms()), stop_on_cancel=True):
                maintenance_log.info("%s", line)
        except StoreError as exc:  # a busy lock or a lost connection: the next round tries again
            maintenance_log.warning("maintenance failed: %s", exc)
        await asyncio.sleep(MAINTENANCE_INTERVAL_S)


def insights_worker_for(settings: Settings, store: EventStore | None = None) -> InsightsWorkerProcess | None:
    """The Insights worker process ``serve`` runs beside it, unless TRAILHOUSE_INSIGHTS_DETECTOR=off.
    It opens the store by URL: ``store``'s, when given, which may not be the settings' (tests)."""
    if settings.insights_detector != "on":
        return None
    url = getattr(store, "url", None) if store is not None else None
    if isinstance(url, str) and url != settings.db_url:
        if url.endswith(":memory:"):  # nothing another process could open
            error_log.warning("insights: an in-memory store has no detector (no worker can open it)")
            return None
        settings = dataclasses.replace(settings, db_url=url)
    return InsightsWorkerProcess(settings, status_file=status_path(settings))


def create_app(
    settings: Settings, store: EventStore | None = None, *, close_store: bool | None = None
) -> Starlette:
    """Build the app. A store passed in stays the caller's to close unless ``close_store`` says otherwise."""
    owns_store = store is None if close_store is None else close_store
    store = (
        store
        if store is not None
        else open_store(
            settings.db_url,
            retention_days=settings.retention_days,
            sqlite_cache_mib=settings.sqlite_cache_mib,
        )
    )
    from ..service.integrity.keys import load_log_signer

    signer = load_log_signer(settings.log_key, settings.resolved_data_dir())
    # Unset means none here: `serve` resolves the host's default (Settings.resolved_ingest_workers)
    # before it builds the app, so an app embedded in a test or an emulator forks no processes.
    decode_workers = settings.ingest_workers or 0
    svc = Services(
        settings=settings,
        store=store,
        page_tokens=PageTokens.for_store(store),
        log_signer=signer,
        buckets=open_object_storage(settings),
        decoder=BatchDecoder(
            decode_workers,
            IngestLimits.of(settings),
            max_body_bytes=settings.max_body_bytes,
            max_batch_events=settings.max_batch_events,
        )
        if decode_workers
        else None,
    )
    limiter = build_gateway(svc)
    operations = {action for action, _ in RPC_OPERATIONS} | NATIVE_OPERATIONS
    operations.add("Console")  # every web console page (docs/console.md)
    metrics = Metrics(operations=operations, token=settings.metrics_token)

    from ..delivery.engine import DeliveryEngine

    # Trail delivery runs on every node; leases in the store let one node deliver each trail.
    delivery = DeliveryEngine(store, settings)
    metrics.watch_delivery(delivery.stats.snapshot)
    # The detector runs in a process of its own (docs/insights.md, "How it runs"): started with the
    # server, restarted if it dies, stopped with it. /metrics shows what its status file says.
    insights_worker = insights_worker_for(settings, store)
    if insights_worker is None:
        metrics.watch_insights(status_path(settings))  # a worker run beside this server, if any
    else:
        supervised = insights_worker
        metrics.watch_insights(supervised.status_file, restarts=lambda: supervised.restarts)
    if settings.log_sequencer == "on":  # each OSS window also delivers its digest (docs/integrity.md)
        from ..delivery.digests import DigestWriter

        delivery.after_window.append(DigestWriter(store, signer))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await limiter.aopen()
        housekeeping = asyncio.create_task(_maintain_forever(store))
        tasks = [
            housekeeping,
            asyncio.create_task(delivery.run_forever()),
        ]
        if insights_worker is not None:
            insights_worker.start()
        if svc.decoder is not None:
            await asyncio.to_thread(svc.decoder.start)  # forks every worker; ~0.3 s for the first
        if settings.log_sequencer == "on":
            tasks.append(asyncio.create_task(sequence_forever(store, signer)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if insights_worker is not None:
                await asyncio.to_thread(insights_worker.stop)
            if svc.decoder is not None:
                await asyncio.to_thread(svc.decoder.close)
            await limiter.aclose()
            limiter.close()
            # The S3 client's pooled connections, closed rather than left to the collector.
            close_buckets = getattr(svc.buckets, "close", None)
            if callable(close_buckets):
                close_buckets()
            if owns_store:
                store.close()

    # The first route is only reached when App.__call__ does not take the request (a root_path is set).
    routes: list[BaseRoute] = [Route("/", limiter, methods=list(RPC_METHODS)), *native_routes(svc, metrics)]
    routes.append(console_mount(svc))  # the web console under /console (docs/console.md)
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
    app.state.delivery = delivery
    app.state.insights_worker = insights_worker
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def app_from_env() -> Starlette:
    """One worker of ``trailhouse serve --workers N``: its settings come from the environment."""
    return create_app(Settings.from_env())
