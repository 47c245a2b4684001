"""Group commit: batches that arrive while another commits are written together, on either backend.

A commit costs about the same for one batch as for several: on SQLite the dirty index pages and the
fsync, on PostgreSQL the statements' round trips, the pages each transaction dirties and its WAL
flush (docs/benchmarks.md, "Group commit on PostgreSQL"). So the caller that takes the writer's lock
writes every batch waiting by then in one transaction and hands each its own result. If that shared
transaction fails, each batch is retried alone, so one caller's failure is never another's.

Time budgets (storage.budget) belong to requests, and a shared transaction to none of them: it runs
under a budget of its own, as long as the longest of its callers' (none if one has none), that no
single caller can cancel. A batch retried alone runs under its own caller's budget again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from .base import AppendResult, StoreError
from .budget import current_budget, query_budget, under_budget
from .units import WriteUnit

__all__ = ["GroupCommit"]

Write = Callable[[Sequence[WriteUnit]], AppendResult]


class _PendingBatch:
    """One caller's batch waiting for a group commit, and its outcome."""

    __slots__ = ("budget", "done", "error", "result", "size", "units")

    def __init__(self, units: Sequence[WriteUnit]) -> None:
        self.units = units
        self.size = sum(u.size for u in units)
        self.budget = current_budget()
        self.done = False
        self.result: AppendResult | None = None
        self.error: Exception | None = None

    def finish(self, result: AppendResult) -> None:
        self.result, self.done = result, True

    def fail(self, error: Exception) -> None:
        self.error, self.done = error, True


class GroupCommit:
    """The one way batches reach a store's write transaction.

    ``write`` is the store's transaction for a list of units; ``lock`` the lock its writer holds
    (other writes of the store may take it too). A caller waits at most ``wait_s`` for the lock
    (None: as long as it takes) before ``busy()`` is raised, unless a holder has taken its batch
    by then. ``held_elsewhere(exc)`` says an error means another process holds the database: then
    no batch is to blame and each would only wait again, so the group and every batch queued behind
    it fail with that error at once.
    """

    def __init__(
        self,
        write: Write,
        lock: threading.Lock,
        *,
        closed: Callable[[], bool],
        wait_s: float | None = None,
        busy: Callable[[], Exception] | None = None,
        held_elsewhere: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self._write = write
        self._lock = lock
        self._closed = closed
        self._wait_s = wait_s
        self._busy = busy
        self._held_elsewhere = held_elsewhere
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingBatch] = []

    def append(self, units: Sequence[WriteUnit]) -> AppendResult:
        mine = _PendingBatch(units)
        if not mine.size:
            return AppendResult([], [])
        with self._pending_lock:
            self._pending.append(mine)
        if not self._lock.acquire(timeout=-1 if self._wait_s is None else self._wait_s):
            with self._pending_lock:
                if mine in self._pending:
                    self._pending.remove(mine)
                    raise self._busy() if self._busy else StoreError("the writer is busy")
            self._lock.acquire()  # a holder took this batch into its group: wait for its outcome
        try:
            if not mine.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit(group)
        finally:
            self._lock.release()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _commit(self, group: list[_PendingBatch]) -> None:
        if self._closed():
            for batch in group:
                batch.fail(StoreError("the store is closed"))
            return
        if len(group) > 1:
            try:
                with query_budget(_longest(group)):
                    result = self._write([unit for batch in group for unit in batch.units])
            except Exception as exc:
                if self._held_elsewhere is not None and self._held_elsewhere(exc):
                    self._fail_all(group, exc)
                    return
                # otherwise retried batch by batch below, so the failure lands on its owner only
            else:
                offset = 0
                for batch in group:
                    end = offset + batch.size
                    batch.finish(
                        AppendResult(
                            [i - offset for i in result.accepted if offset <= i < end],
                            [i - offset for i in result.duplicates if offset <= i < end],
                        )
                    )
                    offset = end
                return
        for n, batch in enumerate(group):
            try:
                with under_budget(batch.budget):
                    batch.finish(self._write(batch.units))
            except Exception as exc:
                if self._held_elsewhere is not None and self._held_elsewhere(exc):
                    self._fail_all(group[n:], exc)
                    return
                batch.fail(exc)

    def _fail_all(self, group: list[_PendingBatch], exc: Exception) -> None:
        """Another process holds the database: the batches queued while this group waited fail
        with it, so no caller waits more than about one lock wait; the next caller tries afresh."""
        with self._pending_lock:
            queued, self._pending = self._pending, []
        for batch in (*group, *queued):
            if not batch.done:
                batch.fail(exc)


def _longest(group: list[_PendingBatch]) -> float | None:
    """The time a shared transaction may take: the longest any of its callers still has."""
    left = [None if b.budget is None else b.budget.remaining_s() for b in group]
    if any(s is None for s in left):
        return None
    # Every caller out of time: a moment, so that the group fails and each batch meets its own end.
    return max(0.001, *(s for s in left if s is not None))
