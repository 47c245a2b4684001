"""The DeliveryStore half of both SQL backends: checkpoints and leases, one statement each.

Every write is a single statement, so it is atomic on both backends without a transaction of
its own: the lease upsert decides who holds a lease in the database, not in a node's memory, and
a checkpoint is saved only by a statement that sees its writer's lease in the same snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from ...model.delivery import DeliveryCheckpoint
from .dialect import Dialect

__all__ = ["DeliverySql"]

Row = Sequence[Any]

_COLUMNS = (
    "account_id, trail_name, sink, run, delivered_seq, window_end_seq, window_ms, last_delivery_ms,"
    " last_error, last_error_ms, delivered_events, updated_ms"
)
_UPDATED = [c.strip() for c in _COLUMNS.split(",")][3:]


def _checkpoint(row: Row) -> DeliveryCheckpoint:
    (
        account,
        trail,
        sink,
        run,
        delivered,
        window_end,
        window_ms,
        last_ms,
        error,
        error_ms,
        count,
        updated,
    ) = row
    return DeliveryCheckpoint(
        str(account),
        str(trail),
        str(sink),
        str(run),
        int(delivered),
        int(window_end),
        int(window_ms),
        None if last_ms is None else int(last_ms),
        str(error),
        None if error_ms is None else int(error_ms),
        int(count),
        int(updated),
    )


class DeliverySql:
    """Mixed into ``SqlStore`` subclasses; uses their ``dialect``, ``_guard``, ``_read``, ``_write``."""

    dialect: Dialect

    def _guard(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, query: str, params: Sequence[object]) -> int:
        raise NotImplementedError

    def newest_seq(self) -> int:
        # SQLite's events and PostgreSQL's event_ids carry seq with an index; both commit seqs in order.
        table = "event_ids" if self.dialect.name == "postgres" else "events"
        with self._guard():
            rows = self._read(f"SELECT COALESCE(MAX(seq), 0) FROM {table}")
        return int(rows[0][0])

    def get_checkpoint(self, *, account_id: str, trail_name: str, sink: str) -> DeliveryCheckpoint | None:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_COLUMNS} FROM trail_delivery WHERE account_id = {ph} AND trail_name = {ph}"
                f" AND sink = {ph}",
                (account_id, trail_name, sink),
            )
        return _checkpoint(rows[0]) if rows else None

    def list_checkpoints(self, *, account_id: str, trail_name: str) -> list[DeliveryCheckpoint]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_COLUMNS} FROM trail_delivery WHERE account_id = {ph} AND trail_name = {ph}"
                " ORDER BY sink",
                (account_id, trail_name),
            )
        return [_checkpoint(r) for r in rows]

    def save_checkpoint(self, checkpoint: DeliveryCheckpoint, *, lease: str, owner: str) -> bool:
        ph = self.dialect.ph
        c = checkpoint
        values = (
            c.account_id,
            c.trail_name,
            c.sink,
            c.run,
            c.delivered_seq,
            c.window_end_seq,
            c.window_ms,
            c.last_delivery_ms,
            c.last_error,
            c.last_error_ms,
            c.delivered_events,
            c.updated_ms,
        )
        held = f"EXISTS (SELECT 1 FROM delivery_leases WHERE name = {ph} AND owner = {ph})"
        updates = ", ".join(f"{col} = excluded.{col}" for col in _UPDATED)
        with self._guard():
            return (
                self._write(
                    f"INSERT INTO trail_delivery ({_COLUMNS}) SELECT {self.dialect.marks(len(values))}"
                    f" WHERE {held}"
                    f" ON CONFLICT (account_id, trail_name, sink) DO UPDATE SET {updates} WHERE {held}",
                    (*values, lease, owner, lease, owner),
                )
                > 0
            )

    def delete_checkpoints(self, *, account_id: str, trail_name: str) -> int:
        ph = self.dialect.ph
        with self._guard():
            return self._write(
                f"DELETE FROM trail_delivery WHERE account_id = {ph} AND trail_name = {ph}",
                (account_id, trail_name),
            )

    def take_lease(self, name: str, *, owner: str, now_ms: int, ttl_ms: int) -> bool:
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    f"INSERT INTO delivery_leases (name, owner, expires_ms) VALUES ({ph}, {ph}, {ph})"
                    " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                    " expires_ms = excluded.expires_ms"
                    f" WHERE delivery_leases.owner = excluded.owner OR delivery_leases.expires_ms < {ph}",
                    (name, owner, now_ms + ttl_ms, now_ms),
                )
                > 0
            )

    def release_lease(self, name: str, *, owner: str) -> None:
        ph = self.dialect.ph
        with self._guard():
            self._write(f"DELETE FROM delivery_leases WHERE name = {ph} AND owner = {ph}", (name, owner))

    def lease_owner(self, name: str, *, now_ms: int) -> str | None:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT owner FROM delivery_leases WHERE name = {ph} AND expires_ms >= {ph}", (name, now_ms)
            )
        return str(rows[0][0]) if rows else None
