"""Calls that wait on the network, replayed on the event loop: requests without a worker thread each.

Admitting a request and answering a read are functions of what their calls to the network return:
the store's statements (PostgreSQL) and the limits' scripts (Redis nonces and throttling). So the
wire layer may run them on the event loop inside a ``ReadReplay``: instead of waiting on the
network, each call hands back the result already fetched for an equal call, and the first call not
fetched yet stops the run with ``ReadNeeded``. The caller fetches that call's result on an
asynchronous connection (``ReplayReads``), which does not block the loop, and runs the work again
from the start. A LookupEvents page is one statement: the answer's Python runs twice (~0.1 ms each)
instead of the request going to a worker thread and back, which cost the server more than the
answer itself (docs/benchmarks.md, "PostgreSQL lookups on the event loop").

A call is made once, by the fetch, whatever the number of runs: so a call with an effect (a nonce
recorded, a throttle's token taken) is replayed as safely as a read, as long as the work has no
effect of its own outside its calls, and a later run makes each earlier call again with equal
arguments or skips it (a key found in a cache an earlier run filled).

A store call that needs more than one call at a time (a transaction, a write) raises
``NotReplayable``, and so does work that needs more calls than its bound (each costs a run). The
caller then runs the work in a worker thread, as before.
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
    """One read of the store: its SQL, its parameters, and whether its rows come in binary form."""

    sql: str
    params: Sequence[object]
    binary: bool


class ReplayStop(BaseException):
    """Ends a replayed run. A BaseException, so that the work's own ``except Exception`` (which turns
    failures into API errors) lets it through to the caller."""


class ReadNeeded(ReplayStop):
    """The run needs ``call``'s result (a ``Statement``, or another source's call), not fetched yet."""

    def __init__(self, call: object) -> None:
        super().__init__(type(call).__name__)
        self.call = call


class NotReplayable(ReplayStop):
    """The work cannot be replayed: run it in a worker thread instead."""


class ReadReplay:
    """The results fetched so far for one piece of work, handed to each run by the call they answer.

    A run gets, for each call, the result of an equal call fetched for this work and not yet used in
    this run (so equal calls made twice in a run get two fetches); a call not fetched yet stops the
    run. A run may skip a call an earlier run made: a key found in a cache the first run filled
    is not read again. Each call is made once, by its fetch, however many runs see its result.
    """

    __slots__ = ("_fetched", "_used", "max_reads")

    def __init__(self, max_reads: int) -> None:
        #: More calls than this and the work goes to a thread: each one costs a whole run.
        self.max_reads = max_reads
        self._fetched: list[tuple[object, Any]] = []
        self._used: set[int] = set()

    def result(self, call: object) -> Any:
        """The result of ``call``; raises ``ReadNeeded`` when it is not fetched yet, and the call's
        own error when fetching it failed."""
        for index, (known, result) in enumerate(self._fetched):
            if index not in self._used and known == call:
                self._used.add(index)
                if isinstance(result, Exception):
                    raise result
                return result
        if len(self._fetched) >= self.max_reads:
            raise NotReplayable(f"more than {self.max_reads} calls")
        raise ReadNeeded(call)

    def fetched(self, call: object, result: Any) -> None:
        """Record what ``call`` returned (or the exception it failed with), for the next run."""
        self._fetched.append((call, result))

    @property
    def reads(self) -> int:
        """How many calls have been fetched (made) so far."""
        return len(self._fetched)

    def restart(self) -> None:
        self._used.clear()

    def clear(self) -> None:
        """Drop the results: a stored error's traceback holds the frame that holds this replay."""
        self._fetched.clear()
        self._used.clear()


class ReplayReads(Protocol):
    """One source's calls for replayed work, on connections an event loop can wait on."""

    async def open(self) -> None:
        """Open the connections' pool in the running event loop, the one that will fetch."""
        ...

    async def fetch(self, call: Any, *, timeout_s: float | None) -> Any:
        """The result of ``call``, or the driver's error (raised inside the work, where the source
        translates it as it would a blocking call's), within ``timeout_s``."""
        ...

    async def aclose(self) -> None: ...


def current_replay() -> ReadReplay | None:
    return _current.get()


@contextlib.contextmanager
def replaying(replay: ReadReplay) -> Iterator[ReadReplay]:
    """Calls inside come from ``replay`` (see the module's docstring)."""
    replay.restart()
    token = _current.set(replay)
    try:
        yield replay
    finally:
        _current.reset(token)
