"""Prometheus metrics of one app, served at ``GET /metrics`` in the text exposition format.

Each app has its own ``CollectorRegistry`` (no module-level state: tests build many apps in one
process). With ``serve --workers N`` every worker counts only its own requests, and a scrape is
answered by whichever worker accepts it (docs/api.md says how to scrape several).

The access log hands every finished request to ``Metrics.observe``; what a request was and how it
ended travels in ``scope["state"]``: ``route`` and ``action`` (the operation), ``error_code``
(the code answered), ``store_error`` (a store failure the native API caught) and ``ingest`` (the
counts of a native ingest).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .insights_worker import read_status

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

INGEST_OUTCOMES = ("accepted", "duplicates", "rejected", "warnings")
#: Codes of the RPC gateway that mean the store failed, not the client.
RPC_STORE_CODES = frozenset({"ServiceUnavailable", "InternalError"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """``operations`` are the names labels may carry: the operations both wires serve. Anything else
    a client sends as Action is "other", so no client can grow the number of series."""

    def __init__(self, *, operations: Collection[str], token: str | None = None) -> None:
        self.token = token
        self.operations = frozenset(operations)
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "trailhouse_http_requests",
            "HTTP requests answered, by route, operation and status.",
            ["route", "operation", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "trailhouse_request_duration_seconds",
            "Time from the request to the end of the answer, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest = Counter(
            "trailhouse_ingest_events",
            "Events received by POST /api/v1/events, by outcome (warnings: stored with a warning).",
            ["outcome"],
            registry=r,
        )
        self.throttled = Counter(
            "trailhouse_throttled_requests",
            "Requests answered with a Throttling error, by operation.",
            ["operation"],
            registry=r,
        )
        self.store_errors = Counter(
            "trailhouse_store_errors",
            "Requests that failed in the store: StoreUnavailable, StoreError and QueryTimeout on the "
            "native API; ServiceUnavailable and InternalError answered by the RPC gateway.",
            ["error"],
            registry=r,
        )
        for outcome in INGEST_OUTCOMES:
            self.ingest.labels(outcome)  # present at 0 from the first scrape
        self._children: dict[tuple[str, str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    def observe(self, scope: Mapping[str, Any], status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        action = state.get("action") or "-"
        operation = action if action in self.operations or action == "-" else "other"
        route = state.get("route") or ("/" if scope.get("path") == "/" else "unmatched")
        key = (route, operation, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()
        timer = self._timers.get(operation)
        if timer is None:
            timer = self._timers[operation] = self.latency.labels(operation)
        timer.observe(seconds)
        code = state.get("error_code")
        if code and str(code).startswith("Throttling"):
            self.throttled.labels(operation).inc()
        store_error = state.get("store_error")
        if store_error:
            self.store_errors.labels(str(store_error)).inc()
        elif route == "/" and code in RPC_STORE_CODES:
            self.store_errors.labels(code).inc()
        ingest = state.get("ingest")
        if isinstance(ingest, Mapping):
            for outcome in INGEST_OUTCOMES:
                n = ingest.get(outcome)
                if isinstance(n, int) and n > 0:
                    self.ingest.labels(outcome).inc(n)

    def watch_delivery(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        """Serve the trail delivery engine's counters, read from ``snapshot`` at each scrape."""
        self.registry.register(_DeliveryCollector(snapshot))

    def watch_insights(self, status_file: Path, *, restarts: Callable[[], int] | None = None) -> None:
        """Serve the Insights worker's counters, read from its status file at each scrape;
        ``restarts``: the supervisor's count, when this server runs the worker."""
        self.registry.register(_InsightsCollector(status_file, restarts))

    def authorised(self, authorization: str) -> bool:
        """Without a token configured /metrics is open (like /healthz); with one it must be sent."""
        if not self.token:
            return True
        kind, _, secret = authorization.partition(" ")
        return kind.lower() == "bearer" and hmac.compare_digest(secret.strip().encode(), self.token.encode())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DeliveryCollector(Collector):
    """This node's trail delivery: events and files delivered, failures, how far behind, stream lag."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        snap = self.snapshot()
        events = CounterMetricFamily(
            "trailhouse_delivery_events", "Events delivered by this node, by destination.", labels=["sink"]
        )
        for sink, n in sorted(snap.get("events", {}).items()):
            events.add_metric([sink], n)
        yield events
        yield CounterMetricFamily(
            "trailhouse_delivery_files", "OSS files written by this node.", value=snap.get("files", 0)
        )
        errors = CounterMetricFamily(
            "trailhouse_delivery_errors",
            "Failed delivery attempts (retried), by destination.",
            labels=["sink"],
        )
        for sink, n in sorted(snap.get("errors", {}).items()):
            errors.add_metric([sink], n)
        yield errors
        behind = GaugeMetricFamily(
            "trailhouse_delivery_behind_events",
            "Log entries not yet delivered, by trail this node delivers (its slowest destination).",
            labels=["trail"],
        )
        for trail, n in sorted(snap.get("behind", {}).items()):
            behind.add_metric([trail], n)
        yield behind
        yield GaugeMetricFamily(
            "trailhouse_delivery_stream_lag_p99_seconds",
            "p99 of the time from an event's arrival in the log to its stream record's acknowledgement "
            "(the last 10,000 records).",
            value=snap.get("stream_lag_p99_s", 0.0),
        )


#: A status file older than this is a worker that no longer runs (it rewrites the file every second).
WORKER_STALE_S = 10.0


class _InsightsCollector(Collector):
    """The Insights worker of this machine (its status file): up, detecting, counts, the webhook's."""

    def __init__(self, status_file: Path, restarts: Callable[[], int] | None) -> None:
        self.status_file, self.restarts = status_file, restarts

    def collect(self) -> Iterator[Any]:
        if self.restarts is not None:
            yield CounterMetricFamily(
                "trailhouse_insights_worker_restarts",
                "Insights worker processes this server started again after one died.",
                value=self.restarts(),
            )
        status = read_status(self.status_file)
        if status is None:
            if self.restarts is not None:
                yield GaugeMetricFamily("trailhouse_insights_worker_up", _UP_HELP, value=0)
            return
        fresh = time.time() * 1000 - float(status.get("updated_ms") or 0) < WORKER_STALE_S * 1000
        up = fresh and not status.get("stopped")
        yield GaugeMetricFamily("trailhouse_insights_worker_up", _UP_HELP, value=1 if up else 0)
        detector = status.get("detector") or {}
        yield GaugeMetricFamily(
            "trailhouse_insights_detector_leader",
            "1 when this machine's worker holds the detector lease (it is the one detecting).",
            value=1 if up and detector.get("leader") else 0,
        )
        for name, key, text in (
            ("events_processed", "events_processed", "Events the worker's detector read since it started."),
            ("records_stored", "records_stored", "Insight records the worker stored since it started."),
            ("failed_steps", "failed_steps", "Detector steps that failed on a store error (retried)."),
        ):
            yield CounterMetricFamily(f"trailhouse_insights_{name}", text, value=detector.get(key, 0))
        webhook = status.get("webhook")
        if not isinstance(webhook, dict):
            return
        for name, text in (
            ("delivered", "Insight records the webhook accepted (2xx) since the worker started."),
            ("retried", "Failed webhook attempts that were retried."),
            ("dead_letters", "Records given up on after every attempt failed (logged with their ids)."),
        ):
            yield CounterMetricFamily(f"trailhouse_insights_webhook_{name}", text, value=webhook.get(name, 0))
        yield GaugeMetricFamily(
            "trailhouse_insights_webhook_queued",
            "Records read from the store for the webhook and not yet delivered (up to 100).",
            value=webhook.get("queued", 0),
        )


_UP_HELP = "1 when the Insights worker's status file is fresh (rewritten within 10 s) and it has not stopped."
