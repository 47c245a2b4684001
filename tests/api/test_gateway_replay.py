"""Requests replayed on the event loop where the store or the limits wait on the network
(storage.replay, api/bounded.run_replayed, api/rpc/gateway.py): PostgreSQL, Redis, or both.

The app is served as uvicorn serves it: one event loop, its lifespan run first (which opens the
asynchronous connections). Admitting a request and a read-only answer run on the loop; each call
they make (a statement, a Redis script) is made once, without blocking the loop, and the work is
run again with its result. What cannot be replayed goes to a worker thread, and every path answers
the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis

from trailhouse.api.context import Services
from trailhouse.api.limits import LimitCall, RedisReplayCalls
from trailhouse.api.rpc.call import Call
from trailhouse.api.rpc.gateway import MAX_REPLAYED_READS
from trailhouse.api.wire import CLIENT_GONE
from trailhouse.storage.replay import Statement

from ._signed import signed_query
from .test_app_rpc_route import rpc_scope
from .test_gateway_inline import LOOKUP, _app

MAIN = threading.main_thread().name


class Served:
    """An app on one event loop with its lifespan started, as uvicorn runs it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runner = asyncio.Runner()
        self._lifespan: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        #: The ASGI scope's state of the last request (what the access log and metrics read).
        self.state: dict[str, Any] = {}
        self.runner.run(self._start())

    async def _start(self) -> None:
        self._lifespan = asyncio.Queue()
        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        await self._lifespan.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.ensure_future(self.app(scope, self._lifespan.get, send))
        await asyncio.wait_for(started.wait(), 10)

    def request(self, query: bytes, *, leave_after_s: float | None = None) -> tuple[int, bytes]:
        """GET / with ``query``; the client closes the connection after ``leave_after_s``."""

        async def go() -> tuple[int, bytes]:
            messages: list[dict[str, Any]] = []
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                if leave_after_s is None:
                    await asyncio.Event().wait()
                await asyncio.sleep(leave_after_s or 0)
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                messages.append(message)

            scope = rpc_scope("GET", query)
            self.state = scope.setdefault("state", {})
            await self.app(scope, receive, send)
            return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])

        return self.runner.run(go())

    def close(self) -> None:
        async def stop() -> None:
            assert self._lifespan is not None and self._task is not None
            await self._lifespan.put({"type": "lifespan.shutdown"})
            await asyncio.wait_for(self._task, 10)

        try:
            self.runner.run(stop())
        finally:
            self.runner.close()


REDIS = "redis://127.0.0.1:6379/0"
#: (database, limits): every configuration in which something waits on the network.
CONFIGS = [("postgres", "memory"), ("postgres", "redis"), ("sqlite", "redis")]


@pytest.fixture
def served(pg_available: str, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., tuple[Served, Any]]]:
    from tests.conftest import pg_schema_url

    opened: list[tuple[Served, Any]] = []
    schemas = []
    prefixes = []

    def serve(database: str = "postgres", limits: str = "memory", **settings: Any) -> tuple[Served, Any]:
        if database == "postgres":
            schema = pg_schema_url(pg_available)
            schemas.append(schema)
            url = schema.__enter__()
        else:
            url = f"sqlite:///{tmp_path / f'replay-{len(opened)}.db'}"
        if limits == "redis":
            prefixes.append(f"th-replay-{time.monotonic_ns()}")
            settings.update(redis_url=redis_url, redis_prefix=prefixes[-1])
        app, key = _app(url, tmp_path, **settings)
        opened.append((Served(app), app))
        return opened[-1][0], key

    yield serve
    for server, app in opened:
        server.close()
        app.state.services.store.close()
    for schema in schemas:
        schema.__exit__(None, None, None)
    client = redis.Redis.from_url(redis_url)
    for prefix in prefixes:
        for name in client.scan_iter(match=f"{prefix}:*"):
            client.delete(name)
    client.close()


def _events(server: Served, key: Any, **params: str) -> list[str]:
    status, body = server.request(signed_query(key, **{"MaxResults": "20", **params}))
    answer = orjson.loads(body)
    assert status == 200, answer
    return [event["eventId"] for event in answer["Events"]]


def _code(server: Served, query: bytes) -> tuple[int, str]:
    status, body = server.request(query)
    return status, orjson.loads(body).get("Code", "OK")


def _store(svc: Services) -> Any:
    return svc.store


@pytest.mark.parametrize(("database", "limits"), CONFIGS)
def test_requests_run_on_the_event_loop(served: Any, record: Any, database: str, limits: str) -> None:
    server, key = served(database, limits)
    assert server.app.state.gateway.on_loop
    seen = record(LOOKUP)
    # The first: the key and the account's term are not cached yet; they are fetched too.
    expected = _events(server, key)
    assert len(expected) == 20
    assert {s.thread for s in seen} == {MAIN}
    seen.clear()
    assert _events(server, key) == expected
    if database == "postgres":
        # Run twice: without the page's rows, then with them.
        assert [s.thread for s in seen] == [MAIN, MAIN]
        assert all(s.budget_s is not None and 9.0 < s.budget_s <= 10.0 for s in seen)
    else:
        # SQLite answers as it is, under the inline budget (the calls to Redis were all admit's).
        assert [s.thread for s in seen] == [MAIN]
        assert seen[0].budget_s == pytest.approx(0.005)


@pytest.mark.parametrize(("database", "limits"), CONFIGS)
def test_a_nonce_is_recorded_once_and_a_replay_refused(served: Any, database: str, limits: str) -> None:
    server, key = served(database, limits)
    gateway = server.app.state.gateway
    made: list[type] = []
    fetch = gateway._fetch

    async def counted(call: Any, timeout_s: float | None) -> Any:
        made.append(type(call))
        return await fetch(call, timeout_s)

    gateway._fetch = counted
    query = signed_query(key, MaxResults="20")
    assert _code(server, query) == (200, "OK")  # admitted over several runs, its nonce taken once
    if limits == "redis":
        assert made.count(LimitCall) == 1  # the nonce; the throttle is off (rate 0: no call)
    if database == "postgres":
        assert made.count(Statement) == 2  # the key, the page (the append cached the account term)
    else:
        assert Statement not in made
    assert _code(server, query) == (400, "SignatureNonceUsed")


@pytest.mark.parametrize(("database", "limits"), CONFIGS)
def test_a_throttled_request_gives_its_nonce_back(served: Any, database: str, limits: str) -> None:
    server, key = served(database, limits, throttle_lookup_events=1)
    assert _code(server, signed_query(key, MaxResults="1")) == (200, "OK")  # the burst of one
    again = signed_query(key, MaxResults="1")
    assert _code(server, again) == (400, "Throttling.User")
    server.runner.run(asyncio.sleep(1.1))
    assert _code(server, again) == (200, "OK")
    assert _code(server, again) == (400, "SignatureNonceUsed")


def test_redis_that_refuses_is_answered_503(served: Any) -> None:
    server, key = served("postgres", "redis")
    _events(server, key)
    gateway = server.app.state.gateway
    server.runner.run(gateway._sources[LimitCall].aclose())
    # The asynchronous client now reaches a port where nothing listens.
    gateway._sources[LimitCall] = RedisReplayCalls("redis://127.0.0.1:1/0")
    assert _code(server, signed_query(key, MaxResults="20")) == (503, "ServiceUnavailable")


def test_an_answer_past_the_call_limit_goes_to_a_thread(served: Any, record: Any) -> None:
    server, key = served()
    expected = _events(server, key)
    reads: list[str] = []

    def many(call: Call, svc: Services) -> None:
        store = _store(svc)
        for n in range(MAX_REPLAYED_READS + 1):
            with store._guard():
                assert store._read("SELECT %s::int", (n,)) == [(n,)]
        reads.append(threading.current_thread().name)

    seen = record(LOOKUP, many)
    assert _events(server, key) == expected
    assert [s.thread == MAIN for s in seen] == [True] * (MAX_REPLAYED_READS + 1) + [False]
    assert reads == [seen[-1].thread]


def test_an_answer_that_needs_a_connection_goes_to_a_thread(served: Any, record: Any) -> None:
    server, key = served()
    expected = _events(server, key)

    def terms(call: Call, svc: Services) -> None:
        # Two statements in one connection: not something a replay can fetch one by one.
        assert _store(svc).meta_get_or_set("replay-test", b"x") == b"x"

    seen = record(LOOKUP, terms)
    assert _events(server, key) == expected
    assert [s.thread == MAIN for s in seen] == [True, False]


def test_a_call_a_later_run_skips_is_not_made_again(served: Any, record: Any) -> None:
    """A run that finds in a cache what an earlier run read (the AccessKey cache, the term cache)
    skips that call; the rest are still matched to their results."""
    server, key = served()
    expected = _events(server, key)
    cache: dict[str, Any] = {}

    def cached(call: Call, svc: Services) -> None:
        if "v" not in cache:
            store = _store(svc)
            with store._guard():
                cache["v"] = store._read("SELECT 7")

    seen = record(LOOKUP, cached)
    assert _events(server, key) == expected
    assert cache == {"v": [(7,)]}
    # Run 1 asks for the read; run 2 fills the cache and asks for the page; run 3 answers.
    assert [s.thread for s in seen] == [MAIN, MAIN, MAIN]


def test_a_statement_past_the_query_limit_is_answered_503(served: Any, record: Any) -> None:
    server, key = served(query_timeout_s=0.5)
    _events(server, key)

    def slow(call: Call, svc: Services) -> None:
        store = _store(svc)
        with store._guard():
            store._read("SELECT pg_sleep(5)")

    seen = record(LOOKUP, slow)
    started = time.monotonic()
    status, body = server.request(signed_query(key, MaxResults="20"))
    assert status == 503, body
    assert b"TRAILHOUSE_QUERY_TIMEOUT_S" in body
    assert time.monotonic() - started < 2.5
    assert all(s.thread == MAIN for s in seen)


def test_a_limit_that_passes_between_statements_is_answered_503_by_the_operation(
    served: Any, record: Any
) -> None:
    """The first statement ends within its statement_timeout (whole tenths: 300 ms for 0.25 s
    left) but after the limit; the answer's next statement is not sent."""
    server, key = served(query_timeout_s=0.25)
    _events(server, key)
    statements: list[int] = []

    def two(call: Call, svc: Services) -> None:
        store = _store(svc)
        with store._guard():
            store._read("SELECT pg_sleep(0.27)")
            statements.append(1)
            store._read("SELECT 2")

    record(LOOKUP, two)
    status, body = server.request(signed_query(key, MaxResults="20"))
    assert status == 503, body
    assert b"TRAILHOUSE_QUERY_TIMEOUT_S" in body
    assert server.state["action"] == "LookupEvents"  # what the access log and the metrics show
    assert statements == [1]


def test_a_failing_statement_is_answered_as_from_a_thread(served: Any, record: Any) -> None:
    server, key = served()
    _events(server, key)

    def broken(call: Call, svc: Services) -> None:
        store = _store(svc)
        with store._guard():
            store._read("SELECT no_such_column FROM terms")

    record(LOOKUP, broken)
    status, body = server.request(signed_query(key, MaxResults="20"))
    assert status == 500, body
    assert orjson.loads(body)["Code"] == "InternalError"


def test_a_client_that_leaves_cancels_its_statement(served: Any, record: Any, pg_available: str) -> None:
    server, key = served(query_timeout_s=60)
    _events(server, key)
    marker = f"replay-leaves-{time.monotonic_ns()}"

    def slow(call: Call, svc: Services) -> None:
        store = _store(svc)
        with store._guard():
            store._read(f"SELECT pg_sleep(30), '{marker}'")

    record(LOOKUP, slow)
    started = time.monotonic()
    status, _ = server.request(signed_query(key, MaxResults="20"), leave_after_s=0.3)
    assert status == CLIENT_GONE
    assert time.monotonic() - started < 5
    # The server stopped the statement (psycopg cancels it when the fetch is cancelled).
    deadline = time.monotonic() + 5
    with psycopg.connect(pg_available, autocommit=True) as conn:
        while True:
            running = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                (f"%pg_sleep(30), '{marker}'%",),
            ).fetchone()
            if running == (0,):
                break
            assert time.monotonic() < deadline, "the statement still runs after the client left"
            server.runner.run(asyncio.sleep(0.1))  # the loop runs on, as a server's does


def test_inline_read_ms_zero_sends_postgresql_reads_to_a_thread(served: Any, record: Any) -> None:
    server, key = served(inline_read_ms=0)
    assert not server.app.state.gateway.on_loop
    _events(server, key)
    seen = record(LOOKUP)
    _events(server, key)
    assert [s.thread == MAIN for s in seen] == [False]
