"""The Merkle leaves not yet logged (``log_pending``, migrations sqlite/0016, postgres/0015), the
same on both backends.

Ingest writes one row per transaction: its seqs are consecutive (first_seq..last_seq), its leaves
are 32 bytes each in seq order, its accounts one term id when the transaction's events are all
one account's (the usual case), else an int64 per event. One row a transaction, not one an event:
the queue costs ingest one more statement, not one more B-tree entry per event. The sequencer
reads the rows past its watermark and deletes those it has logged entirely in the transaction
that moves the watermark; a row it logged in part stays, and its logged head is skipped by seq.

The migration queues each event stored but not yet logged as a row of its own, with the leaf its
row held (NULL for events stored before sqlite/0011, postgres/0009: hashed from the body).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from .rows import Placed

__all__ = ["PENDING_COLUMNS", "pending_row", "queued_leaves"]

#: The columns of ``log_pending``, in the order of ``pending_row``.
PENDING_COLUMNS = ("last_seq", "first_seq", "account", "accounts", "leaves")
_LEAF = 32


def pending_row(placed: Sequence[Placed]) -> tuple[int, int, int | None, bytes | None, bytes]:
    """The transaction's ``log_pending`` row (its units are placed at consecutive seqs)."""
    accounts = [a for p in placed for a in p.accounts()]
    account: int | None = accounts[0]
    packed: bytes | None = None
    if any(a != account for a in accounts):
        wide = array("q", cast(list[int], accounts))  # an event's account is never NULL
        if sys.byteorder != "little":
            wide.byteswap()
        account, packed = None, wide.tobytes()
    leaves = b"".join(leaf for p in placed for leaf in p.unit.leaf)
    first, last = placed[0].seqs[0], placed[-1].seqs[-1]
    if len(leaves) != _LEAF * (last - first + 1):
        # A unit from a decode worker that lost its leaves would shift every later event's leaf.
        raise ValueError(
            f"{len(leaves)} bytes of Merkle leaves for the {last - first + 1} events of seqs {first}-{last}"
        )
    return last, first, account, packed, leaves


#: Reads rows: (sql, params) -> rows.
Read = Callable[[str, Sequence[Any]], Sequence[Any]]


def queued_leaves(read: Read, ph: str, after_seq: int, limit: int) -> Iterator[tuple[int, int, bytes | None]]:
    """(seq, account term id, leaf or None) of the first ``limit`` queued events after ``after_seq``,
    in seq order. The rows read are those starting within ``limit`` seqs (seqs of a transaction are
    consecutive, so those hold the next ``limit`` events unless seqs were skipped); if none does,
    the next row, so that a gap of more than ``limit`` seqs does not stall the sequencer."""
    columns = ", ".join(PENDING_COLUMNS)
    rows = read(
        f"SELECT {columns} FROM log_pending WHERE last_seq > {ph} AND first_seq <= {ph} ORDER BY last_seq",
        (after_seq, after_seq + limit),
    )
    if not rows:
        rows = read(
            f"SELECT {columns} FROM log_pending WHERE last_seq > {ph} ORDER BY last_seq LIMIT 1", (after_seq,)
        )
    left = limit
    for last, first, account, accounts, leaves in rows:
        if accounts is not None:
            wide = array("q")
            wide.frombytes(bytes(accounts))
            if sys.byteorder != "little":
                wide.byteswap()
        start = max(first, after_seq + 1)
        for seq in range(start, min(last, start + left - 1) + 1):
            i = seq - first
            leaf = None if leaves is None else bytes(leaves[_LEAF * i : _LEAF * i + _LEAF])
            yield seq, account if accounts is None else wide[i], leaf
            left -= 1
        if left <= 0:
            return
