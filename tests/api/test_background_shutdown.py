"""Background store work ends with the app: shutting down never leaves a thread using the store.

The app's housekeeping (``store.maintain``: partitions, vacuum, rebuilding a month's indexes) and
the log's sequencer run their store calls in worker threads. Cancelling the asyncio task does not
stop such a thread; had the lifespan returned before it ended, the store would be closed under it,
and a test's schema dropped under it (the CI deadlock of 2026-12-07: ``DROP SCHEMA`` against a
``REINDEX … CONCURRENTLY`` still running from the app of a test that had ended).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import pg_schema_url, pg_table_locked
from trailhouse.api.app import create_app
from trailhouse.api.bounded import run_in_background
from trailhouse.settings import Settings
from trailhouse.storage import open_store
from trailhouse.storage.base import QueryCancelled
from trailhouse.storage.budget import current_budget


def _until_cancelled(started: threading.Event, seconds: float) -> str:
    """Store-like work: waits for its budget to be cancelled, for at most ``seconds``."""
    budget = current_budget()
    assert budget is not None and budget.timeout_s is None  # a switch, no time limit
    stopped = threading.Event()
    with budget.on_cancel(stopped.set):
        started.set()
        if stopped.wait(seconds):
            raise QueryCancelled("cancelled")
    return "finished"


@pytest.mark.parametrize("stop_on_cancel", [True, False])
def test_a_cancelled_task_ends_only_with_its_thread(stop_on_cancel: bool) -> None:
    started = threading.Event()
    ended: list[float] = []

    async def main() -> float:
        task = asyncio.ensure_future(
            run_in_background(lambda: _until_cancelled(started, 1.0), stop_on_cancel=stop_on_cancel)
        )
        while not started.is_set():
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ended.append(time.monotonic() - t0)
        return ended[0]

    waited = asyncio.run(main())
    if stop_on_cancel:
        assert waited < 0.5  # the work was told to stop, and it did
    else:
        assert waited >= 0.9  # the work was let finish: the task waited for it


def test_the_answer_and_the_error_come_back() -> None:
    assert asyncio.run(run_in_background(lambda: 42, stop_on_cancel=True)) == 42

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(run_in_background(fails, stop_on_cancel=False))


def _backends_running(base_url: str, sql: str, *, cancel: bool = False) -> int:
    """How many sessions run ``sql`` now; with ``cancel``, they are cancelled as well (so that a
    failing test does not hang on the thread it left behind)."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE query = %s AND state = 'active'", (sql,)
            )
        ]
        if cancel:
            for pid in pids:
                conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    return len(pids)


def test_shutdown_stops_maintenance_waiting_on_postgres(pg_available: str, tmp_path: Path) -> None:
    """The housekeeping's VACUUM waits behind another session's lock: shutdown cancels it and
    returns only once it has stopped, not leaving it to wait on in the database."""
    with pg_schema_url(pg_available) as backend_url:
        _shutdown_with_maintenance_waiting(pg_available, backend_url, tmp_path)


def _shutdown_with_maintenance_waiting(pg_available: str, backend_url: str, tmp_path: Path) -> None:
    store = open_store(backend_url)
    try:
        settings = Settings(
            db_url=backend_url, data_dir=str(tmp_path), insights_detector="off", log_sequencer="off"
        )
        app = create_app(settings, store)
        with pg_table_locked(backend_url, "log_pending"):

            async def run() -> tuple[float, int]:
                async with app.router.lifespan_context(app):
                    deadline = time.monotonic() + 10
                    while _backends_running(pg_available, VACUUM) == 0:
                        assert time.monotonic() < deadline, "the housekeeping never reached its VACUUM"
                        await asyncio.sleep(0.05)
                    t0 = time.monotonic()
                took = time.monotonic() - t0
                # Still inside the lock: had shutdown abandoned the thread, the VACUUM would wait on.
                return took, _backends_running(pg_available, VACUUM, cancel=True)

            took, left = asyncio.run(run())
        assert left == 0
        assert took < 5
    finally:
        store.close()


VACUUM = "VACUUM log_pending"
