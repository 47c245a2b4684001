"""PostgreSQL statements of replayed answers (storage.replay), on asynchronous connections.

A pool of its own: ``psycopg``'s asynchronous connections belong to the event loop that opened
them, so the app's lifespan opens the pool in the loop that serves the requests (``open``) and
closes it when that loop ends (``aclose``). Statement time limits are set per connection as the
blocking pool's are (``statement_timeout_ms``); a statement cancelled by the caller (the client
left, or the limit passed without an answer) is cancelled on the server by ``psycopg``.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import psycopg
import psycopg_pool
from psycopg_pool import AsyncConnectionPool

from .replay import Statement

__all__ = [
    "SET_STATEMENT_TIMEOUT",
    "PgReplayReads",
    "checkout_wait_s",
    "pool_options",
    "statement_timeout_ms",
]

AsyncConn = psycopg.AsyncConnection[Any]


def statement_timeout_ms(remaining_s: float | None) -> int:
    """``statement_timeout`` for a budget with ``remaining_s`` left (None: no limit, 0).

    Whole tenths of a second: a connection keeps its setting from one request to the next, so most
    requests need no extra round trip."""
    return 0 if remaining_s is None else max(100, math.ceil(remaining_s * 10) * 100)


#: Sets a connection's statement time limit (``statement_timeout_ms``).
SET_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', %s, false)"


def pool_options(*, max_size: int, checkout_timeout_s: float, name: str) -> dict[str, Any]:
    """What both pools (the blocking one, this one) share: autocommit connections, opened later."""
    return {
        "min_size": 1,
        "max_size": max_size,
        "timeout": checkout_timeout_s,
        "open": False,
        "kwargs": {"autocommit": True},
        "name": name,
    }


def checkout_wait_s(limit_s: float, remaining_s: float | None) -> float:
    """How long to wait for a pooled connection: the limit, or less when the budget has less left."""
    return limit_s if remaining_s is None else max(0.05, min(limit_s, remaining_s))


class PgReplayReads:
    def __init__(self, conninfo: str, *, max_size: int, checkout_timeout_s: float) -> None:
        self._checkout_timeout_s = checkout_timeout_s
        self._pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
            conninfo,
            **pool_options(
                max_size=max_size, checkout_timeout_s=checkout_timeout_s, name="trailhouse-replay"
            ),
        )
        self._timeouts: weakref.WeakKeyDictionary[AsyncConn, int] = weakref.WeakKeyDictionary()

    async def open(self) -> None:
        """Open the pool in the running loop (the app's lifespan), without waiting for a connection."""
        await self._pool.open(wait=False)

    async def fetch(self, statement: Statement, *, timeout_s: float | None) -> list[Any] | Exception:
        try:
            async with self._pool.connection(
                timeout=checkout_wait_s(self._checkout_timeout_s, timeout_s)
            ) as conn:
                ms = statement_timeout_ms(timeout_s)
                if self._timeouts.get(conn, 0) != ms:
                    # Forgotten first: a cancel while the SET is in flight leaves the setting unknown.
                    self._timeouts.pop(conn, None)
                    await conn.execute(SET_STATEMENT_TIMEOUT, (f"{ms}ms",))
                    self._timeouts[conn] = ms
                cursor = conn.cursor(binary=statement.binary)
                await cursor.execute(statement.sql, statement.params)
                return await cursor.fetchall()
        except psycopg.Error as exc:  # the pool's PoolTimeout too: an OperationalError
            return exc
        except psycopg_pool.PoolClosed as exc:  # the app is shutting down
            return psycopg.OperationalError(str(exc))

    async def aclose(self) -> None:
        await self._pool.close()
