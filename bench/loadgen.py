"""Load generators against a running server: HTTP ingest producers and signed query clients.

Query clients run in separate processes (spawned, each with its own keep-alive connection):
threads in one interpreter would queue on the GIL for up to its 5 ms switch interval, which is the
very scale being measured. They speak ``http.client``, not httpx: on a 2-core box the clients share
the CPU with the server, so the lighter the client, the more of the box measures the server
(docs/benchmarks.md has the client CPU per request of both). A barrier starts the clients of one
measurement together. Signing and response parsing happen outside the timed span, which covers
sending the request and reading the whole response.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import queue
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from .shapes import Shape
from .signing import Credentials, sign
from .stats import summarize

__all__ = ["ClientPool", "http_ingest"]

# ------------------------------------------------------------------------------------ HTTP ingest


def http_ingest(base_url: str, token: str, batches: list[bytes], producers: int) -> dict[str, Any]:
    """POST every batch to /api/v1/events from ``producers`` threads; timing starts when all are ready."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in batches:
        work.put(body)
    for _ in range(producers):
        work.put(None)
    ready = threading.Barrier(producers + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0, "bytes": 0}
    first_error: list[str] = []
    headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}

    def produce() -> None:
        with httpx.Client(base_url=base_url, timeout=300) as client:
            client.get("/healthz")
            ready.wait()
            while (body := work.get()) is not None:
                t0 = time.perf_counter()
                response = client.post("/api/v1/events", content=body, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(elapsed)
                    totals["bytes"] += len(body)
                    if response.status_code != 200:
                        totals["errors"] += 1
                        if not first_error:
                            first_error.append(f"{response.status_code} {response.text[:300]}")
                        continue
                    report = response.json()
                    totals["accepted"] += report["accepted"]
                    totals["duplicates"] += report["duplicates"]
                    totals["rejected"] += report["rejected"]

    threads = [threading.Thread(target=produce, daemon=True) for _ in range(producers)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    events = totals["accepted"] + totals["duplicates"] + totals["rejected"]
    return {
        "producers": producers,
        "requests": len(batches),
        "events": events,
        "seconds": round(wall, 3),
        "events_per_second": round(events / wall, 1) if wall else None,
        "mb_per_second": round(totals["bytes"] / wall / 1e6, 2) if wall else None,
        "request_latency_ms": summarize(latencies),
        **totals,
        "first_error": first_error[0] if first_error else None,
    }


# ---------------------------------------------------------------------------------- query clients

_conn: http.client.HTTPConnection | None = None
_address: tuple[str, int] = ("127.0.0.1", 80)
_creds: Credentials | None = None
_barrier: Any = None


def _init_worker(base_url: str, creds: Credentials, barrier: Any) -> None:
    global _conn, _address, _creds, _barrier
    parts = urlsplit(base_url)
    _address = (parts.hostname or "127.0.0.1", parts.port or 80)
    _conn = http.client.HTTPConnection(*_address, timeout=120)
    _creds = creds
    _barrier = barrier


def _get(target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET on the keep-alive connection, reconnecting once if the server closed it."""
    global _conn
    for attempt in (1, 2):
        assert _conn is not None
        try:
            _conn.request("GET", target, headers=headers)
            response = _conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            _conn.close()
            _conn = http.client.HTTPConnection(*_address, timeout=120)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ping() -> bool:
    _barrier.wait(timeout=300)
    return _get("/healthz", {})[0] == 200


def _items(data: dict[str, Any]) -> list[Any]:
    return data.get("Events") or data.get("Ips") or []


def _walk_task(shape: Shape, walks: int, pages: int) -> dict[str, Any]:
    """``walks`` times: the first page, then NextToken after NextToken up to ``pages`` pages."""
    assert _conn is not None and _creds is not None
    _barrier.wait(timeout=300)
    by_page: list[list[float]] = [[] for _ in range(pages)]
    errors = 0
    first_error = None
    depth: list[int] = []
    first_walk: list[list[str]] = []
    items_seen = 0
    started = time.time()
    for walk in range(walks):
        token = None
        reached = 0
        for page in range(pages):
            params = dict(shape.params)
            if token:
                params["NextToken"] = token
            req = sign(shape.style, _creds, shape.api, shape.version, params)
            t0 = time.perf_counter()
            status, body = _get(f"/?{req.query}", req.headers)
            elapsed = (time.perf_counter() - t0) * 1000
            if status != 200:
                errors += 1
                first_error = first_error or f"{status} {body[:400]!r}"
                break
            by_page[page].append(elapsed)
            reached = page + 1
            data = orjson.loads(body)
            items = _items(data)
            items_seen += len(items)
            if walk == 0:
                first_walk.append([i.get("eventId") or i.get("Ip") for i in items])
            token = data.get("NextToken")
            if not token:
                break
        depth.append(reached)
    finished = time.time()
    return {
        "by_page": by_page,
        "errors": errors,
        "first_error": first_error,
        "depth": depth,
        "first_walk": first_walk,
        "items": items_seen,
        "started": started,
        "finished": finished,
    }


class ClientPool:
    """``n`` client processes that run the same walk together."""

    def __init__(self, n: int, base_url: str, creds: Credentials) -> None:
        ctx = mp.get_context("spawn")
        self.n = n
        self._executor = ProcessPoolExecutor(
            max_workers=n,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(base_url, creds, ctx.Barrier(n)),
        )
        # Start every process (the barrier needs all n) and open each keep-alive connection.
        futures = [self._executor.submit(_ping) for _ in range(n)]
        if not all(f.result(timeout=300) for f in futures):
            raise RuntimeError("a client could not reach the server")

    def run(self, shape: Shape, walks: int, pages: int) -> dict[str, Any]:
        futures = [self._executor.submit(_walk_task, shape, walks, pages) for _ in range(self.n)]
        parts = [f.result() for f in futures]
        latencies = [x for p in parts for page in p["by_page"] for x in page]
        wall = max(p["finished"] for p in parts) - min(p["started"] for p in parts)
        depths = [d for p in parts for d in p["depth"]]
        by_page = [[x for p in parts for x in p["by_page"][i]] for i in range(pages)]
        return {
            "clients": self.n,
            "walks_per_client": walks,
            "requests": len(latencies),
            "seconds": round(wall, 3),
            "requests_per_second": round(len(latencies) / wall, 1) if wall > 0 else None,
            "latency_ms": summarize(latencies),
            "p50_by_page_ms": [summarize(v)["p50"] for v in by_page if v],
            "pages_reached_max": max(depths) if depths else 0,
            "items_per_walk": round(sum(p["items"] for p in parts) / max(1, len(depths)), 1),
            "errors": sum(p["errors"] for p in parts),
            "first_error": next((p["first_error"] for p in parts if p["first_error"]), None),
            "_first_walk": parts[0]["first_walk"],
        }

    def pids(self) -> list[int]:
        """The client processes, to price a request in client CPU."""
        return list(self._executor._processes)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
