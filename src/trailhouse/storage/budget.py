"""A time limit and a cancel switch for the store calls made on behalf of one request.

The wire layer opens a budget around a request's store work (``query_budget``); the backends read
it from a context variable, so no signature between the two has to carry it:

* SQLite checks it from a progress handler every few thousand virtual-machine steps and
  interrupts the statement;
* PostgreSQL sets ``statement_timeout`` to what is left and, when the budget is cancelled
  (the client left), cancels the running statement from another thread.

Either way the store call ends with ``QueryTimeout`` or ``QueryCancelled``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from .base import QueryCancelled, QueryTimeout

__all__ = ["QueryBudget", "current_budget", "query_budget", "under_budget"]

_current: ContextVar[QueryBudget | None] = ContextVar("trailhouse_query_budget", default=None)


class QueryBudget:
    """How long store work may still run, and whether its caller has given up."""

    __slots__ = ("_cancelled", "_clock", "_hooks", "_lock", "_timed_out", "deadline", "timeout_s")

    def __init__(self, timeout_s: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.timeout_s = timeout_s if timeout_s and timeout_s > 0 else None
        self.deadline = None if self.timeout_s is None else clock() + self.timeout_s
        self._cancelled = False
        self._timed_out = False
        self._lock = threading.Lock()
        self._hooks: dict[int, Callable[[], None]] = {}

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def remaining_s(self) -> float | None:
        """Seconds left (never below 0), or None without a time limit."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self._clock())

    def exhausted(self) -> bool:
        """True once the caller gave up or the time is over: store work must stop."""
        if self._cancelled:
            return True
        return self.deadline is not None and self._clock() >= self.deadline

    def error(self) -> QueryTimeout | QueryCancelled:
        if self._cancelled and not self._timed_out:
            return QueryCancelled("the client went away; the query was cancelled")
        return QueryTimeout(
            f"the query ran longer than the limit of {self.timeout_s:g} s"
            " (TRAILHOUSE_QUERY_TIMEOUT_S); narrow the time range or the filters"
        )

    def check(self) -> None:
        if self.exhausted():
            raise self.error()

    def cancel(self, *, timed_out: bool = False) -> None:
        """Give up: running store work is stopped. Safe from any thread; hooks run off the caller's.

        ``timed_out`` says the time ran out (the store did not stop by itself), not the client left.
        """
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            self._timed_out = timed_out
            hooks = list(self._hooks.values())
        for hook in hooks:
            # A hook may block (PostgreSQL's cancel opens a connection): never on an event loop.
            threading.Thread(target=_quietly, args=(hook,), daemon=True, name="trailhouse-cancel").start()

    @contextlib.contextmanager
    def on_cancel(self, hook: Callable[[], None]) -> Iterator[None]:
        """Run ``hook`` if the budget is cancelled while inside the block."""
        key = id(hook)
        with self._lock:
            self._hooks[key] = hook
            cancelled = self._cancelled
        try:
            if cancelled:
                raise self.error()
            yield
        finally:
            with self._lock:
                self._hooks.pop(key, None)


def _quietly(hook: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        hook()


def current_budget() -> QueryBudget | None:
    return _current.get()


@contextlib.contextmanager
def query_budget(timeout_s: float | None) -> Iterator[QueryBudget]:
    """Open a budget for the store calls made inside the block (and in threads started from it)."""
    budget = QueryBudget(timeout_s)
    with under_budget(budget):
        yield budget


@contextlib.contextmanager
def under_budget(budget: QueryBudget | None) -> Iterator[None]:
    """Run the block under ``budget``, opened elsewhere (another thread's caller), or under none."""
    token = _current.set(budget)
    try:
        yield
    finally:
        _current.reset(token)
