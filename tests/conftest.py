"""Fixtures shared by every test tier: backends (a real SQLite file, the real local PostgreSQL),
and a real HTTP server on 127.0.0.1 for end-to-end tests with the official SDKs."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from trailhouse.settings import Settings
from trailhouse.storage import open_store
from trailhouse.storage.base import EventStore

PG_URL = os.environ.get("TRAILHOUSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TRAILHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = ["sqlite", "postgres"]


def _unavailable(what: str, url: str, how: str) -> None:
    message = f"{what} at {url} is not reachable; start it with: {how}"
    if IN_CI:
        pytest.fail(f"CI=true requires it: {message}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


@pytest.fixture(scope="session")
def pg_available() -> str:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        _unavailable(
            "PostgreSQL", PG_URL, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError:
        _unavailable(
            "Redis", REDIS_URL, 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""'
        )
    return REDIS_URL


@contextlib.contextmanager
def pg_schema_url(base_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test, dropped afterwards."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        _drop_schema(base_url, schema)


def _drop_schema(base_url: str, schema: str, attempts: int = 5) -> None:
    """``DROP SCHEMA … CASCADE``, tried again after a deadlock: it locks every table of the schema
    one by one, and a session of the test's server that is still ending (a process killed on
    purpose, a transaction rolling back) may hold one of them while it waits for another."""
    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


@contextlib.contextmanager
def pg_table_locked(db_url: str, table: str) -> Iterator[None]:
    """Another session holds ``table`` of ``db_url``'s schema in ACCESS EXCLUSIVE mode meanwhile.

    A statement that needs the table waits for the lock (PostgreSQL counts the wait against its
    statement_timeout), one that does not runs as usual: a query that runs long however fast the
    machine, while the others are not slowed.
    """
    import psycopg

    conn = psycopg.connect(db_url)
    try:
        conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        yield
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'trail.db'}"
        return
    base = request.getfixturevalue("pg_available")
    with pg_schema_url(base) as url:
        yield url


@pytest.fixture
def backend_store(backend_url: str) -> Iterator[EventStore]:
    store = open_store(backend_url)
    try:
        yield store
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    host: str
    port: int
    settings: Settings
    store: EventStore
    services: Any = None  # the app's Services (api/context.py), for tests that look inside

    @property
    def endpoint(self) -> str:
        """``host:port`` as the tea SDKs want it."""
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def run_server(settings: Settings, store: EventStore | None = None) -> Iterator[LiveServer]:
    """Serve the real app with uvicorn on 127.0.0.1 in a background thread."""
    import uvicorn

    from trailhouse.api.app import create_app

    port = settings.port if settings.port else free_port()
    app = create_app(settings, store)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        services = app.state.services
        yield LiveServer(f"http://127.0.0.1:{port}", "127.0.0.1", port, settings, services.store, services)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand: ``server_factory(db_url=..., **settings)``; all stopped at teardown."""
    stack = contextlib.ExitStack()

    def start(db_url: str | None = None, **overrides: object) -> LiveServer:
        settings = Settings(
            db_url=db_url or f"sqlite:///{tmp_path / 'server.db'}",
            port=free_port(),
            data_dir=str(tmp_path / "data"),
            **overrides,  # type: ignore[arg-type]
        )
        return stack.enter_context(run_server(settings))

    with stack:
        yield start
