"""Store reads replayed on the event loop: PostgreSQL lookups without a worker thread each.

A read-only answer is a function of what its statements return. So the wire layer may run it on
the event loop inside a ``ReadReplay``: instead of waiting on the network, the store hands back the
rows already fetched for each statement in turn and, at the first statement not fetched yet, stops
the answer with ``ReadNeeded``. The caller fetches that statement's rows on an asynchronous
connection (``ReplayReads``), which does not block the loop, and runs the answer again from the
start. A LookupEvents page is one statement: the answer's Python runs twice (~0.1 ms each) instead
of the request going to a worker thread and back, which cost the server more than the answer itself
(docs/benchmarks.md, "PostgreSQL lookups on the event loop").

A store call that needs more than one-statement reads (a transaction, a term look-up that misses the
cache, a write) raises ``NotReplayable``; so does an answer whose statements change from one run to
the next. The caller then runs the answer in a worker thread, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "NotReplayable",
    "ReadNeeded",
    "ReadReplay",
    "ReplayReads",
    "ReplayStop",
    "Statement",
    "current_replay",
    "replaying",
]

_current: ContextVar[ReadReplay | None] = ContextVar("trailhouse_read_replay", default=None)


@dataclass(frozen=True, slots=True)
class Statement:
    """One read: its SQL, its parameters, and whether its rows come in binary form."""

    sql: str
    params: Sequence[object]
    binary: bool


class ReplayStop(BaseException):
    """Ends a replayed run of an answer. A BaseException, so that the answer's own ``except
    Exception`` (which turns failures into API errors) lets it through to the caller."""


class ReadNeeded(ReplayStop):
    """The answer needs ``statement``'s rows, not fetched yet."""

    def __init__(self, statement: Statement) -> None:
        super().__init__(statement.sql)
        self.statement = statement


class NotReplayable(ReplayStop):
    """The answer cannot be replayed: run it in a worker thread instead."""


class ReadReplay:
    """The rows fetched so far for one answer, handed back in order on each run."""

    __slots__ = ("_fetched", "_next", "max_reads")

    def __init__(self, max_reads: int) -> None:
        #: More statements than this and the answer goes to a thread: each one costs a whole run.
        self.max_reads = max_reads
        self._fetched: list[tuple[Statement, list[Any] | Exception]] = []
        self._next = 0

    def rows(self, statement: Statement) -> list[Any]:
        """The rows of the run's next statement; raises ``ReadNeeded`` when they are not fetched
        yet, and the statement's own error when fetching it failed."""
        index = self._next
        if index == len(self._fetched):
            if index >= self.max_reads:
                raise NotReplayable(f"more than {self.max_reads} statements")
            raise ReadNeeded(statement)
        known, result = self._fetched[index]
        if known.sql != statement.sql or known.params != statement.params or known.binary != statement.binary:
            raise NotReplayable("the answer did not repeat its statements")
        self._next = index + 1
        if isinstance(result, Exception):
            raise result
        return result

    def fetched(self, statement: Statement, result: list[Any] | Exception) -> None:
        """Record what ``statement`` returned (or how it failed), for the next run."""
        self._fetched.append((statement, result))

    @property
    def reads(self) -> int:
        return len(self._fetched)

    def restart(self) -> None:
        self._next = 0


class ReplayReads(Protocol):
    """A backend's statements for replayed answers, on connections an event loop can wait on."""

    async def open(self) -> None:
        """Open the connections' pool in the running event loop, the one that will fetch."""
        ...

    async def fetch(self, statement: Statement, *, timeout_s: float | None) -> list[Any] | Exception:
        """The rows of ``statement``, or the driver's error (raised inside the answer, where the
        store translates it as it would a blocking read's), within ``timeout_s`` on the server."""
        ...

    async def aclose(self) -> None: ...


def current_replay() -> ReadReplay | None:
    return _current.get()


@contextlib.contextmanager
def replaying(replay: ReadReplay) -> Iterator[ReadReplay]:
    """Store reads inside come from ``replay`` (see the module's docstring)."""
    replay.restart()
    token = _current.set(replay)
    try:
        yield replay
    finally:
        _current.reset(token)
