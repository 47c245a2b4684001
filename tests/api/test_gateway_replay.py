"""PostgreSQL lookups replayed on the event loop (storage.replay, api/rpc/gateway.py).

The app is served as uvicorn serves it: one event loop, its lifespan run first (which opens the
asynchronous connections). A read-only answer runs on the loop; each statement it needs is fetched
without blocking the loop and the answer is run again with the rows. What cannot be replayed goes
to a worker thread, and every path answers the same.
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

from trailhouse.api.context import Services
from trailhouse.api.rpc.call import Call
from trailhouse.api.rpc.gateway import MAX_REPLAYED_READS
from trailhouse.api.wire import CLIENT_GONE

from ._signed import signed_query
from .test_gateway_inline import LOOKUP, _app

MAIN = threading.main_thread().name


class Served:
    """An app on one event loop with its lifespan started, as uvicorn runs it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runner = asyncio.Runner()
        self._lifespan: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
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

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": "/",
                "raw_path": b"/",
                "query_string": query,
                "root_path": "",
                "headers": [(b"host", b"rpc.test")],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
            }
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


@pytest.fixture
def served(pg_available: str, tmp_path: Path) -> Iterator[Callable[..., tuple[Served, Any]]]:
    from tests.conftest import pg_schema_url

    opened: list[tuple[Served, Any]] = []
    schemas = []

    def serve(**settings: Any) -> tuple[Served, Any]:
        schema = pg_schema_url(pg_available)
        schemas.append(schema)
        app, key = _app(schema.__enter__(), tmp_path, **settings)
        opened.append((Served(app), app))
        return opened[-1][0], key

    yield serve
    for server, app in opened:
        server.close()
        app.state.services.store.close()
    for schema in schemas:
        schema.__exit__(None, None, None)


def _events(server: Served, key: Any, **params: str) -> list[str]:
    status, body = server.request(signed_query(key, **{"MaxResults": "20", **params}))
    answer = orjson.loads(body)
    assert status == 200, answer
    return [event["eventId"] for event in answer["Events"]]


def _store(svc: Services) -> Any:
    return svc.store


def test_a_lookup_is_replayed_on_the_event_loop(served: Any, record: Any) -> None:
    server, key = served()
    first = record(LOOKUP)
    expected = _events(server, key)  # the key and the account's term are not cached yet: a thread
    assert len(expected) == 20
    assert first[0].thread != MAIN
    first.clear()
    assert _events(server, key) == expected
    # Run twice on the loop: without the page's rows, then with them.
    assert [s.thread for s in first] == [MAIN, MAIN]
    assert all(s.budget_s is not None and 9.0 < s.budget_s <= 10.0 for s in first)


def test_an_answer_past_the_statement_limit_goes_to_a_thread(served: Any, record: Any) -> None:
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


def test_an_answer_whose_statements_change_goes_to_a_thread(served: Any, record: Any) -> None:
    server, key = served()
    expected = _events(server, key)
    runs: list[int] = []

    def moving(call: Call, svc: Services) -> None:
        runs.append(len(runs))
        store = _store(svc)
        with store._guard():
            assert store._read("SELECT %s::int", (runs[-1],)) == [(runs[-1],)]

    seen = record(LOOKUP, moving)
    assert _events(server, key) == expected
    assert [s.thread == MAIN for s in seen] == [True, True, False]


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
    assert server.app.state.gateway.reads is None
    _events(server, key)
    seen = record(LOOKUP)
    _events(server, key)
    assert [s.thread == MAIN for s in seen] == [False]
