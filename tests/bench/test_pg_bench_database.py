"""The benchmark's PostgreSQL database is the benchmark's alone: bench.stores.pg_backend refuses
to drop and remake its schema while another client is connected (a server left by an earlier run
would write into the new schema through its search path)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from bench.stores import pg_backend


@pytest.mark.postgres
def test_a_database_in_use_is_refused(pg_available: str) -> None:
    name = f"trailhouse_bench_guard_{secrets.token_hex(4)}"
    url = urlunsplit(urlsplit(pg_available)._replace(path=f"/{name}"))
    admin = urlunsplit(urlsplit(pg_available)._replace(path="/postgres"))
    try:
        first = pg_backend(url, "bench")  # creates the database; nobody else is connected
        assert first.detail["schema"] == "bench"
        with psycopg.connect(first.url) as leftover:
            leftover.execute("CREATE TABLE bench.left_behind (x int)")
            leftover.commit()
            started = time.monotonic()
            with pytest.raises(
                RuntimeError, match=r"1 other connection\(s\) to the benchmark database"
            ) as err:
                pg_backend(url, "bench", wait_s=0.3)
            assert time.monotonic() - started < 5
            assert f"pid {leftover.info.backend_pid}" in str(err.value)
            assert leftover.execute("SELECT count(*) FROM bench.left_behind").fetchone() == (
                0,
            )  # not dropped
        # Once the other client has gone, the schema is made again, empty.
        again = pg_backend(url, "bench", wait_s=5)
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT to_regclass('bench.left_behind')").fetchone() == (None,)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
