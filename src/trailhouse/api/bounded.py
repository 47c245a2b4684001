"""Store work for one request, off the event loop, bounded in time, cancelled when the client leaves;
and background store work that a shutdown stops and waits for (``run_in_background``).

Every request that reads the store goes through ``run_bounded``: the blocking call runs in a worker
thread under a ``QueryBudget`` (storage.budget), which the backends enforce themselves (SQLite
interrupts the statement, PostgreSQL's statement_timeout). Should the backend not come back — a
stalled network connection answers nothing — the waiting side gives up a moment after the deadline,
cancels the budget and abandons the thread, so the client is answered in bounded time either way.

Work may be run on the event loop instead: ``try_inline`` for a read where the store never waits on
the network (SQLite, under a budget it enforces), ``run_replayed`` for work whose calls wait on the
network (PostgreSQL statements, Redis scripts: storage.replay), both bounded and cancelled the same
way.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.types import Receive

from ..storage.base import QueryCancelled, QueryTimeout
from ..storage.budget import QueryBudget, query_budget
from ..storage.replay import NotReplayable, ReadNeeded, ReadReplay, replaying

__all__ = [
    "run_bounded",
    "run_in_background",
    "run_replayed",
    "stream_bounded",
    "try_inline",
]

T = TypeVar("T")

#: How long past the deadline the waiting side trusts the backend to stop by itself.
GRACE_S = 1.0


async def run_bounded(
    fn: Callable[..., T], *args: Any, timeout_s: float | None, receive: Receive | None = None
) -> T:
    """``fn(*args)`` in a worker thread under a budget of ``timeout_s`` (None or 0: no limit).

    With ``receive`` (only once the request body has been read), a client that disconnects cancels
    the work: ``QueryCancelled`` is raised. Past the limit: ``QueryTimeout``.
    """
    with query_budget(timeout_s) as budget:
        return await _run(budget, functools.partial(fn, *args), receive)


async def run_in_background(fn: Callable[..., T], *args: Any, stop_on_cancel: bool) -> T:
    """``fn(*args)`` in a worker thread for a background task (maintenance, the log's sequencer).

    Cancelling the task (the app shutting down) does not abandon the thread: the task ends only once
    the store work has, so the store is never closed, nor a database schema dropped, under it. With
    ``stop_on_cancel`` the work is stopped first (its running statement cancelled, as when a client
    leaves): for work that may run for minutes, such as rebuilding a month's indexes. Without, it
    is let finish: one short transaction.
    """
    with query_budget(None) as budget:  # no time limit; a switch to cancel the statement
        # The thread sees the budget: the task copies this context when it is created.
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if stop_on_cancel:
                budget.cancel()
            await asyncio.wait({work})  # its outcome no longer matters, only that it ended
            if not work.cancelled():
                work.exception()  # retrieved, so that asyncio does not log it as lost
            raise


def try_inline(fn: Callable[..., T], *args: Any, budget_s: float) -> T | None:
    """``fn(*args)`` right here (on the event loop) under a budget of ``budget_s``; None when the
    budget ran out first, for the caller to run it again in a thread. Only for work that the
    budget stops by itself (SQLite's reads) and that may be run twice."""
    with query_budget(budget_s):
        try:
            return fn(*args)
        except QueryTimeout:
            return None


#: A budget with no time left (``query_budget`` reads 0 as "no limit").
_SPENT_S = 1e-9
#: Fetches one call of replayed work: its result, or the exception it failed with.
Fetch = Callable[[Any, "float | None"], Awaitable[Any]]


async def run_replayed(
    fn: Callable[..., T],
    *args: Any,
    fetch: Fetch,
    max_reads: int,
    timeout_s: float | None,
    receive: Receive | None = None,
    restartable: bool = True,
) -> T | None:
    """``fn(*args)`` on the event loop, run again each time it has made a call more (a statement, a
    Redis script), which ``fetch`` makes meanwhile without blocking the loop (storage.replay). None
    when it cannot be replayed (more than ``max_reads`` calls, or a store call that needs a
    connection of its own), for the caller to run it in a thread.

    ``restartable=False`` for work whose calls have effects (a nonce recorded): once one has been
    made, the work must not be run again from scratch, and not being able to replay it then is a bug.

    Under the same budget as ``run_bounded``: past ``timeout_s``, ``QueryTimeout``; a client that
    disconnects (with ``receive``) cancels the call, ``QueryCancelled``.
    """
    started = time.monotonic()
    replay = ReadReplay(max_reads)
    try:
        while True:
            left = None if not timeout_s else timeout_s - (time.monotonic() - started)
            try:
                # The budget is what the store translates a statement cancelled at its limit by. A
                # run is only Python: one whose calls are all fetched ends even past the limit.
                with replaying(replay), query_budget(left if left is None else max(left, _SPENT_S)):
                    return fn(*args)
            except ReadNeeded as need:
                if left is not None and left <= 0:  # the limit passed while the last call was made
                    raise QueryTimeout("the query time limit passed") from None
                replay.fetched(need.call, await _fetch(fetch, need.call, left, receive))
            except NotReplayable:
                if not restartable and replay.reads:
                    raise RuntimeError("replayed work that has made calls could not be replayed") from None
                return None
    finally:
        replay.clear()


async def _fetch(fetch: Fetch, call: Any, left: float | None, receive: Receive | None) -> Any:
    work = asyncio.ensure_future(fetch(call, left))
    tasks: list[asyncio.Future[Any]] = [work]
    if receive is not None:
        tasks.append(asyncio.ensure_future(_disconnected(receive)))
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=None if left is None else left + GRACE_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()  # a statement still running is cancelled on the server (psycopg)
    if work in done:
        return work.result()
    if done:
        raise QueryCancelled("the client left")
    raise QueryTimeout("the store did not answer within the query time limit")


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has closed the connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _run(budget: QueryBudget, call: Callable[[], T], receive: Receive | None) -> T:
    outcome: list[T] = []
    failure: list[BaseException] = []
    limit = None if budget.timeout_s is None else budget.timeout_s + GRACE_S
    try:
        with anyio.move_on_after(limit) as scope:
            async with anyio.create_task_group() as tg:

                async def work() -> None:
                    try:
                        outcome.append(await anyio.to_thread.run_sync(call, abandon_on_cancel=True))
                    except Exception as exc:  # raised as itself below, not inside an ExceptionGroup
                        failure.append(exc)
                    tg.cancel_scope.cancel()

                async def watch() -> None:
                    assert receive is not None
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            budget.cancel()
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(work)
                if receive is not None:
                    tg.start_soon(watch)
    except BaseException:
        budget.cancel()  # the request itself was cancelled: stop its store work too
        raise
    if failure:
        raise failure[0]
    if outcome:
        return outcome[0]
    if scope.cancelled_caught and not budget.cancelled:
        budget.cancel(timed_out=True)  # the store did not stop by itself: a stalled connection
    raise budget.error()


async def stream_bounded(
    iterator: Iterator[T], *, timeout_s: float | None, receive: Receive | None = None
) -> AsyncIterator[T]:
    """Drive a blocking iterator from worker threads, each step under its own budget.

    A long export is many short steps, each bounded like a lookup. A streaming response listens for
    the disconnect itself and cancels this generator, which cancels the step in flight: pass
    ``receive`` only where nothing else reads it.
    """
    sentinel: Any = object()
    while True:
        item = await run_bounded(next, iterator, sentinel, timeout_s=timeout_s, receive=receive)
        if item is sentinel:
            return
        yield item
