"""Overload: 32 clients with throttling off hammer LookupEvents and GetAccessKeyLastUsed*, while 200
idle TCP connections are held open; another client's /healthz and a small lookup keep answering
within their targets, the server's memory stays bounded, and idle connections are closed after the
idle timeout.

The 32 clients run in two other processes (16 threads each), so the probes in this process measure
the server, not the test's own GIL. Targets (2 cores, loopback): /healthz p99 < 250 ms, a one-event
LookupEvents p99 < 1 s, RSS growth < 150 MiB, every idle connection closed within the idle timeout
plus 3 s, no 5xx.
"""

from __future__ import annotations

import collections
import http.client
import multiprocessing
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.reliability._harness import (
    V2017,
    V2020,
    Creds,
    ServeProcess,
    event,
    holds_socket_closed,
    lookup_2020,
    make_creds,
    percentile,
    rss_kib,
    serving,
    sign_query,
    v1_params,
)
from tests.reliability._report import FULL, seconds
from tests.reliability.conftest import backend_of
from trailhouse.model.times import now_ms

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600 if FULL else 120)]

CLIENT_PROCESSES, THREADS_PER_PROCESS = 2, 16
IDLE_CONNECTIONS = 200
IDLE_TIMEOUT_S = 2.0
HEALTHZ_P99_MS = 250.0
LOOKUP_P99_MS = 1000.0
RSS_GROWTH_MIB = 150.0
KEY = "LTAI5tOverloadKey0000001"


def _requests(creds: Creds, rng: random.Random) -> str:
    """One signed GET of the hammered operations."""
    roll = rng.randrange(7)
    if roll == 0:
        params = v1_params(creds, "LookupEvents", V2017, EventName="DescribeInstances")
    elif roll in (1, 2):
        params = v1_params(creds, "LookupEvents", V2020, **lookup_2020(creds, EventRW="Read"))
    elif roll == 3:
        params = v1_params(creds, "GetAccessKeyLastUsedIps", V2020, AccessKey=KEY, ServiceName="Ecs")
    elif roll == 4:
        params = v1_params(creds, "GetAccessKeyLastUsedEvents", V2020, AccessKey=KEY, ServiceName="Ecs")
    elif roll == 5:
        params = v1_params(creds, "GetAccessKeyLastUsedProducts", V2020, AccessKey=KEY)
    else:
        params = v1_params(creds, "GetAccessKeyLastUsedInfo", V2020, AccessKey=KEY)
    return "/?" + sign_query(params, creds.secret)


def hammer(port: int, creds: Creds, duration: float, seed: int, out: Any) -> None:
    """One client process: THREADS_PER_PROCESS keep-alive connections sending as fast as they can."""
    statuses: collections.Counter[int] = collections.Counter()
    failures = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(n: int) -> None:
        nonlocal failures
        rng = random.Random(seed * 1000 + n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            try:
                conn.request("GET", _requests(creds, rng))
                response = conn.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
            except (http.client.HTTPException, OSError):
                with lock:
                    failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS_PER_PROCESS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"statuses": dict(statuses), "failures": failures})


class IdleHolder:
    """Keeps IDLE_CONNECTIONS connections open that never send a byte (re-opening those the server
    closes, as an attacker would), until ``stop``; then reports how long the last ones took to close."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socks: list[socket.socket] = []
        self.opened = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket:
        self.opened += 1
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def _run(self) -> None:
        self.socks = [self._open() for _ in range(IDLE_CONNECTIONS)]
        while self.running:
            for i, sock in enumerate(self.socks):
                if not self.running:
                    break
                sock.setblocking(False)
                try:
                    closed = sock.recv(1) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    sock.close()
                    self.socks[i] = self._open()
            time.sleep(0.2)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=30)

    def closed_within(self, within: float) -> int:
        """How many of the connections still held are closed by the server within ``within`` s."""
        deadline = time.monotonic() + within
        closed = 0
        for sock in self.socks:
            sock.setblocking(True)
            if holds_socket_closed(sock, max(0.05, deadline - time.monotonic())):
                closed += 1
            sock.close()
        return closed


def _seed(server: ServeProcess, creds: Creds, count: int = 3000) -> None:
    now = now_ms()
    rng = random.Random(5)
    events = [
        event(
            creds.account_id,
            f"ov-{n}",
            now - rng.randint(0, 20 * 86_400_000),
            sourceIpAddress=f"198.51.100.{n % 200}",
            eventRW=rng.choice(("Read", "Write")),
            userIdentity={
                "type": "ram-user",
                "accountId": creds.account_id,
                "principalId": "2001",
                "userName": "alice",
                "accessKeyId": KEY,
            },
        )
        for n in range(count)
    ]
    r = httpx.post(
        f"{server.url}/api/v1/events", content=orjson.dumps(events), headers=creds.bearer, timeout=60
    )
    assert r.status_code == 200 and r.json()["accepted"] == count, r.text[:500]


def test_overload_keeps_other_clients_answered(
    db_url: str, data_dir: Path, master_key: str, report: Any
) -> None:
    backend = backend_of(db_url)
    hammering, probe = make_creds(db_url, master_key), make_creds(db_url, master_key)
    duration = seconds(5, 30)
    settings = {
        "TRAILHOUSE_THROTTLE_LOOKUP_EVENTS": 0,
        "TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE": 0,
        "TRAILHOUSE_IDLE_TIMEOUT_S": IDLE_TIMEOUT_S,
        "TRAILHOUSE_REQUEST_TIMEOUT_S": 5,
    }
    with serving(db_url, data_dir, master_key, **settings) as server:
        _seed(server, hammering)
        _seed(server, probe, 200)
        rss_start = rss_kib(server.pid)
        rss_peak = rss_start
        healthz_ms: list[float] = []
        lookup_ms: list[float] = []
        probe_statuses: collections.Counter[int] = collections.Counter()
        stop = threading.Event()

        def probe_healthz() -> None:
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    started = time.perf_counter()
                    try:
                        status = http.get(f"{server.url}/healthz").status_code
                    except httpx.TransportError:
                        status = 0
                    healthz_ms.append((time.perf_counter() - started) * 1000)
                    probe_statuses[status] += 1
                    time.sleep(0.05)

        def probe_lookup() -> None:
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    params = v1_params(probe, "LookupEvents", V2020, MaxResults="1")
                    started = time.perf_counter()
                    try:
                        status = http.get(f"{server.url}/?{sign_query(params, probe.secret)}").status_code
                    except httpx.TransportError:
                        status = 0
                    lookup_ms.append((time.perf_counter() - started) * 1000)
                    probe_statuses[status] += 1
                    time.sleep(0.2)

        def sample_rss() -> None:
            nonlocal rss_peak
            while not stop.is_set():
                rss_peak = max(rss_peak, rss_kib(server.pid))
                time.sleep(0.1)

        holder = IdleHolder(server.port)
        holder.start()
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        clients = [
            ctx.Process(target=hammer, args=(server.port, hammering, duration, n, results))
            for n in range(CLIENT_PROCESSES)
        ]
        for c in clients:
            c.start()
        time.sleep(1.0)  # the clients' interpreters start; probing begins under load
        probes = [threading.Thread(target=f, daemon=True) for f in (probe_healthz, probe_lookup, sample_rss)]
        for t in probes:
            t.start()
        loads = [results.get(timeout=duration + 120) for _ in clients]
        stop.set()
        for c in clients:
            c.join(timeout=30)
        for t in probes:
            t.join(timeout=30)
        holder.stop()
        idle_closed = holder.closed_within(IDLE_TIMEOUT_S + 3)
        after = server.healthz_seconds(5)
        alive = server.alive() and after < 5
        log = server.log_tail()
    load_statuses: collections.Counter[int] = collections.Counter()
    for load in loads:
        load_statuses.update({int(k): v for k, v in load["statuses"].items()})
    load_failures = sum(load["failures"] for load in loads)
    served = sum(load_statuses.values())
    server_errors = sum(n for s, n in load_statuses.items() if s >= 500) + sum(
        n for s, n in probe_statuses.items() if s >= 500 or s == 0
    )
    h50, h99 = percentile(healthz_ms, 50), percentile(healthz_ms, 99)
    l50, l99 = percentile(lookup_ms, 50), percentile(lookup_ms, 99)
    growth_mib = (rss_peak - rss_start) / 1024
    ok = (
        h99 < HEALTHZ_P99_MS
        and l99 < LOOKUP_P99_MS
        and growth_mib < RSS_GROWTH_MIB
        and server_errors == 0
        and idle_closed == IDLE_CONNECTIONS
        and alive
    )
    report(
        "overload: 32 clients, 200 idle connections",
        backend,
        f"{served:,} hammering requests in {duration:.0f} s ({served / duration:,.0f}/s, "
        f"{load_failures} transport errors); /healthz p50 {h50:.0f} ms p99 {h99:.0f} ms "
        f"(target {HEALTHZ_P99_MS:.0f}); small lookup p50 {l50:.0f} ms p99 {l99:.0f} ms "
        f"(target {LOOKUP_P99_MS:.0f}); RSS {rss_start / 1024:.0f} -> peak {rss_peak / 1024:.0f} MiB; "
        f"{idle_closed}/{IDLE_CONNECTIONS} idle connections closed after the "
        f"{IDLE_TIMEOUT_S:.0f} s idle timeout "
        f"({holder.opened} opened); {server_errors} 5xx",
        ok=ok,
        hammer_requests=served,
        hammer_statuses={str(k): v for k, v in load_statuses.items()},
        healthz_p50_ms=h50,
        healthz_p99_ms=h99,
        lookup_p50_ms=l50,
        lookup_p99_ms=l99,
        rss_start_mib=rss_start / 1024,
        rss_peak_mib=rss_peak / 1024,
        idle_closed=idle_closed,
        idle_opened=holder.opened,
        server_errors=server_errors,
    )
    assert server_errors == 0, (load_statuses, probe_statuses, log)
    assert alive, log
    assert idle_closed == IDLE_CONNECTIONS, f"only {idle_closed} idle connections were closed"
    assert growth_mib < RSS_GROWTH_MIB, f"RSS grew {growth_mib:.0f} MiB"
    assert h99 < HEALTHZ_P99_MS, f"/healthz p99 {h99:.0f} ms"
    assert l99 < LOOKUP_P99_MS, f"small lookup p99 {l99:.0f} ms"
    assert served > 0
