"""The Merkle log sequencer's transaction on SQLite: the one writer, ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .base import StoreError, StoreUnavailable
from .sql.merkle_log import Run

__all__ = ["runner", "writer_transaction"]


def runner(conn: sqlite3.Connection) -> Run:
    """A statement runner on ``conn``: the sequencer's, and the log migration's data step."""

    def run(sql: str, params: Sequence[Any], many: bool) -> list[Any]:
        if many:
            conn.executemany(sql, params)
            return []
        return conn.execute(sql, params).fetchall()

    return run


@contextlib.contextmanager
def writer_transaction(
    lock: threading.Lock, timeout_s: float, closed: Callable[[], bool], conn: sqlite3.Connection
) -> Iterator[Run]:
    """Hold the process's write lock and the database's (no other process or thread writes)."""
    if not lock.acquire(timeout=timeout_s):
        raise StoreUnavailable("the SQLite writer is busy (the log sequencer waits for its turn)")
    try:
        if closed():
            raise StoreError("the store is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield runner(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        lock.release()
