"""The eventId dedupe of a SQLite store, merged in bulk (migration sqlite/0018).

A new event's (account, eventId hash, seq) goes to ``event_keys_recent``, led by the seq's
generation, so a batch's keys share a few pages. When enough have gathered, the writer moves them
all, sorted, into ``event_keys``: there they land many to a leaf, where one at a time each took a
leaf page of its own in every commit. ``event_keys_state.merged_seq`` says where ``event_keys``
ends: every later event's key is in ``event_keys_recent``.

Readers look in both tables in one statement (``storage.sql.find``). The writer keeps a copy of
``event_keys_recent`` in memory (``RecentKeys``), since probing it by key means one probe per
generation; the copy catches up with the file at the start of each write transaction, so the
batches and merges of other processes writing the same file are seen too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from .sql.dialect import SQLITE
from .sql.find import EVENT_KEY_GEN_BITS
from .sql.rows import Placed, StoredIds

__all__ = ["MERGE_KEYS_AT", "RecentKeys", "RecentRow", "recent_rows", "stored_event_ids"]

#: How many recent keys the writer gathers before merging them into ``event_keys``. A merge
#: rewrites up to every leaf of ``event_keys`` it lands on once, so the more keys it carries, the
#: fewer bytes per event it writes; it also holds the write lock while it runs (~0.5 s for 2^18 keys
#: into a 10M store, docs/benchmarks.md).
MERGE_KEYS_AT = 1 << 18

Key = tuple[int, int]
#: (gen, account, eventId hash, seq), as ``event_keys_recent`` holds it.
RecentRow = tuple[int, int, int, int]


class RecentKeys:
    """The writer's copy of ``event_keys_recent``: (account, eventId hash) -> the events' seqs."""

    def __init__(self, merge_at: int = MERGE_KEYS_AT) -> None:
        self.merge_at = merge_at
        self._seqs: dict[Key, list[int]] = {}
        #: ``merged_seq`` when the copy was read; -1 before it ever was.
        self._merged = -1
        #: The highest seq whose key the copy holds (or that the merge covered).
        self._upto = 0

    def __len__(self) -> int:
        return len(self._seqs)

    def sync(self, conn: sqlite3.Connection, top: int) -> None:
        """Catch up with the file, inside the writer's transaction; ``top`` is its highest seq."""
        (merged,) = conn.execute("SELECT merged_seq FROM event_keys_state").fetchone()
        rows: Iterable[tuple[int, int, int]] = ()
        if merged != self._merged:  # first use, or another process merged
            self._seqs.clear()
            rows = conn.execute("SELECT account, event_key, seq FROM event_keys_recent")
            self._merged = merged
        elif top > self._upto:  # another process wrote events
            rows = conn.execute(
                "SELECT account, event_key, seq FROM event_keys_recent WHERE gen >= ? AND seq > ?",
                ((self._upto + 1) >> EVENT_KEY_GEN_BITS, self._upto),
            )
        self.add(rows)
        self._upto = max(top, merged)

    def add(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """Keys committed to ``event_keys_recent``: (account, eventId hash, seq)."""
        seqs = self._seqs
        upto = self._upto
        for account, key, seq in rows:
            found = seqs.get((account, key))
            if found is None:
                seqs[(account, key)] = [seq]
            else:  # two eventIds of one hash, both stored: each is checked against its body
                found.append(seq)
            upto = max(upto, seq)
        self._upto = upto

    def seqs(self, keys: Iterable[Key]) -> list[int]:
        """The seqs of the recent events behind these keys."""
        found: list[int] = []
        for key in keys:
            hit = self._seqs.get(key)
            if hit is not None:
                found += hit
        return found

    def merge(self, conn: sqlite3.Connection, top: int) -> None:
        """Move every recent key into ``event_keys``, inside the writer's transaction.

        ``merged`` must then be called once the transaction has committed.
        """
        self.sync(conn, top)
        conn.execute(
            "INSERT INTO event_keys (account, event_key, seq)"
            " SELECT account, event_key, seq FROM event_keys_recent ORDER BY account, event_key, seq"
        )
        conn.execute("DELETE FROM event_keys_recent")
        conn.execute("UPDATE event_keys_state SET merged_seq = ?", (top,))

    def merged(self, top: int) -> None:
        self._seqs.clear()
        self._merged = self._upto = top


def recent_rows(placed: Sequence[Placed]) -> list[RecentRow]:
    """The ``event_keys_recent`` rows of placed events, in the table's order (fewer page splits)."""
    rows: list[RecentRow] = []
    for p in placed:
        for account, key, seq in zip(p.accounts(), p.unit.event_key, p.seqs, strict=True):
            assert account is not None  # every event has an account
            rows.append((seq >> EVENT_KEY_GEN_BITS, account, key, seq))
    rows.sort()
    return rows


def stored_event_ids(
    conn: sqlite3.Connection, recent: RecentKeys, keys: list[tuple[int | None, int]]
) -> StoredIds:
    """The stored eventIds behind (account, eventId hash), whatever their day: those merged into
    ``event_keys``, in chunks, and the recent ones the writer holds in memory."""
    found: StoredIds = {}
    by_account: dict[int, list[int]] = {}
    pairs: list[Key] = []
    for account, key in keys:
        assert account is not None  # every event has an account
        by_account.setdefault(account, []).append(key)
        pairs.append((account, key))
    for account, hashes in by_account.items():
        unique = sorted(set(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = conn.execute(
                "SELECT k.event_key, event_id_of(e.body) FROM event_keys k JOIN events e ON e.seq = k.seq"
                f" WHERE k.account = ? AND k.event_key IN ({SQLITE.marks(len(chunk))})",
                [account, *chunk],
            )
            for key, event_id in rows:
                found.setdefault((account, key), set()).add(event_id)
    seqs = recent.seqs(pairs)
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        rows = conn.execute(
            "SELECT account, event_key, event_id_of(body) FROM events"
            f" WHERE seq IN ({SQLITE.marks(len(chunk))})",
            chunk,
        )
        for account, key, event_id in rows:
            found.setdefault((account, key), set()).add(event_id)
    return found
