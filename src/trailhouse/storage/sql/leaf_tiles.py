"""Which event each Merkle log leaf is, one row per (account, 256-leaf tile): ``log_leaf_tiles``
(migrations sqlite/0015, postgres/0014), for both backends.

A row holds the seq of the tile's first leaf and the gaps to each next one. An account's leaves
are in seq order (the sequencer takes events in seq order), so every gap is at least 1; it is
stored as a LEB128 varint of ``gap - 1``: one byte while an account's consecutive events are
fewer than 128 seqs apart. That is ~1 byte per event where a row per event with its index took
~25-30 on SQLite (docs/benchmarks.md, "Merkle log: bytes per event").
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from ..base import StoreError

if TYPE_CHECKING:
    from .merkle_log import Run

__all__ = [
    "LEAF_TILE",
    "convert_log_leaves",
    "leaf_tile_rows",
    "pack_gaps",
    "seq_position",
    "unpack_seqs",
    "upsert_leaf_tiles",
]

#: Leaves per row: a level-0 tile of the log (service/integrity/tiles.py's width), so that an
#: entry bundle is one row and the row of the right edge is the only one that still grows.
LEAF_TILE = 256


def pack_gaps(seqs: Sequence[int]) -> bytes:
    """The seqs after the first, as LEB128 varints of (gap to the previous one) - 1."""
    gaps = [b - a - 1 for a, b in zip(seqs, seqs[1:], strict=False)]
    if gaps and min(gaps) < 0:
        raise StoreError("the leaves of a log tile must be in increasing seq order")
    if not gaps or max(gaps) < 0x80:
        return bytes(gaps)  # every gap in one byte: the common case, without a Python loop
    out = bytearray()
    for gap in gaps:
        while gap >= 0x80:
            out.append(gap & 0x7F | 0x80)
            gap >>= 7
        out.append(gap)
    return bytes(out)


def unpack_seqs(first: int, packed: bytes) -> list[int]:
    """The seqs of a tile row: ``first``, then each gap of ``pack_gaps`` added on."""
    if not packed or max(packed) < 0x80:
        return list(accumulate(packed, lambda seq, gap: seq + gap + 1, initial=first))
    seqs = [first]
    value = shift = 0
    for byte in packed:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        seqs.append(seqs[-1] + value + 1)
        value = shift = 0
    if shift:
        raise StoreError("a log leaf tile row ends inside a gap")
    return seqs


def seq_position(seqs: list[int], seq: int) -> int | None:
    """Where ``seq`` is in a tile row's (increasing) seqs, or None."""
    at = bisect_left(seqs, seq)
    return at if at < len(seqs) and seqs[at] == seq else None


def upsert_leaf_tiles(ph: str) -> str:
    """The statement that writes tile rows; the right edge's row is replaced as it grows."""
    return (
        f"INSERT INTO log_leaf_tiles (first_seq, account, tile, gaps) VALUES ({ph}, {ph}, {ph}, {ph})"
        " ON CONFLICT (account, tile) DO UPDATE SET first_seq = excluded.first_seq, gaps = excluded.gaps"
    )


def leaf_tile_rows(run: Run, ph: str, account: int, first: int, seqs: list[int]) -> list[tuple[Any, ...]]:
    """The rows to upsert for an account's new leaves ``first``, ``first + 1``, … (``seqs``), in
    the sequencer's transaction: the stored partial tile they continue is read and extended."""
    tile, offset = divmod(first, LEAF_TILE)
    if offset:
        rows = run(
            f"SELECT first_seq, gaps FROM log_leaf_tiles WHERE account = {ph} AND tile = {ph}",
            (account, tile),
            False,
        )
        stored = unpack_seqs(int(rows[0][0]), bytes(rows[0][1])) if rows else []
        if len(stored) != offset:
            raise StoreError(f"the stored leaves of log tile {tile} are damaged: {len(stored)}, not {offset}")
        seqs = stored + seqs
    return [
        (chunk[0], account, tile + i // LEAF_TILE, pack_gaps(chunk))
        for i in range(0, len(seqs), LEAF_TILE)
        for chunk in (seqs[i : i + LEAF_TILE],)
    ]


def _old_rows_as_tiles(
    account: int, idx_seq: Iterable[tuple[int, int]], expect: int
) -> tuple[list[tuple[Any, ...]], int]:
    """An old store's (idx, seq) rows of one account, in idx order from ``expect``, as tile rows."""
    seqs: list[int] = []
    for idx, seq in idx_seq:
        if int(idx) != expect + len(seqs):
            raise StoreError(
                f"log_leaves of account {account} is damaged: leaf {expect + len(seqs)} is missing;"
                " this store cannot take the migration to one row per log tile"
            )
        seqs.append(int(seq))
    return [
        (chunk[0], account, (expect + i) // LEAF_TILE, pack_gaps(chunk))
        for i in range(0, len(seqs), LEAF_TILE)
        for chunk in (seqs[i : i + LEAF_TILE],)
    ], expect + len(seqs)


#: Leaves an old store's conversion reads at once: whole tiles, a few MB of Python objects.
_CONVERT_CHUNK = 256 * LEAF_TILE


def convert_log_leaves(run: Run, ph: str) -> None:
    """The data step of migrations sqlite/0015 and postgres/0014, in their transaction: every
    ``log_leaves`` row (one per leaf) into ``log_leaf_tiles`` (one per 256), then ``log_leaves``
    dropped. Read a chunk of whole tiles at a time by the old (account, idx) index."""
    accounts = [int(r[0]) for r in run("SELECT DISTINCT account FROM log_leaves", (), False)]
    converted = 0
    for account in accounts:
        done = 0
        while True:
            rows = run(
                f"SELECT idx, seq FROM log_leaves WHERE account = {ph} AND idx >= {ph} AND idx < {ph}"
                " ORDER BY idx",
                (account, done, done + _CONVERT_CHUNK),
                False,
            )
            if not rows:
                break
            tiles, done = _old_rows_as_tiles(account, rows, done)
            run(upsert_leaf_tiles(ph), tiles, True)
        converted += done
    # Rows past a run of missing leaves as long as a chunk would not have been read: say so
    # rather than drop them.
    ((stored,),) = run("SELECT count(*) FROM log_leaves", (), False)
    if int(stored) != converted:
        raise StoreError(
            f"log_leaves is damaged: {stored} rows, of which {converted} are leaves 0, 1, … of their"
            " account; this store cannot take the migration to one row per log tile"
        )
    run("DROP TABLE log_leaves", (), False)
