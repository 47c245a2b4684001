"""The eventId dedupe of a SQLite store, merged in bulk (migration sqlite/0018).

A new event's (account, eventId hash, seq) goes to ``event_keys_recent``, led by the key's slice
(its top 4 bits) and the seq's generation, so a batch's keys share a few pages. When enough have
gathered, the writer moves the fullest slice's keys, sorted, into ``event_keys``: there they land
many to a leaf of their key range, where one at a time each took a leaf page of its own in every
commit. A slice at a time (a 16th of the keys), so a merge holds the write lock a 16th as long.
``event_keys_state.merged_seq`` says, per slice, where ``event_keys`` ends: every later event's
key of that slice is in ``event_keys_recent``.

Readers look in both tables in one statement (``storage.sql.find``). The writer keeps a copy of
``event_keys_recent`` in memory (``RecentKeys``), since probing it by key means one probe per
generation; the copy catches up with the file at the start of each write transaction, so the
batches and merges of other processes writing the same file are seen too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from .sql.dialect import SQLITE
from .sql.find import EVENT_KEY_GEN_BITS, EVENT_KEY_SLICES, event_key_slice
from .sql.rows import Placed, StoredIds

__all__ = ["MERGE_KEYS_AT", "RecentKeys", "RecentRow", "recent_rows", "stored_event_ids"]

#: How many recent keys the writer holds before each merge of a slice. The more keys a merge
#: carries into its range of ``event_keys``, the fewer leaves it writes per key; the writer's copy
#: costs ~250 bytes of memory per key (docs/benchmarks.md, "The eventId dedupe merged in bulk").
MERGE_KEYS_AT = 1 << 18

Key = tuple[int, int]
#: (slice, gen, account, eventId hash, seq), as ``event_keys_recent`` holds it.
RecentRow = tuple[int, int, int, int, int]


class RecentKeys:
    """The writer's copy of ``event_keys_recent``, per slice: (account, eventId hash) -> seqs."""

    def __init__(self, merge_at: int = MERGE_KEYS_AT) -> None:
        self.merge_at = merge_at
        self._slices: list[dict[Key, list[int]]] = [{} for _ in range(EVENT_KEY_SLICES)]
        #: Each slice's ``merged_seq`` when its copy was read; -1 before it ever was.
        self._merged = [-1] * EVENT_KEY_SLICES
        #: The highest seq whose key the copy holds (or that a merge covered).
        self._upto = 0
        #: After a failed merge, the next waits until the copy holds this many keys.
        self._retry_at = 0

    def __len__(self) -> int:
        return sum(map(len, self._slices))

    def merge_due(self) -> bool:
        held = len(self)
        return held >= self.merge_at and held >= self._retry_at

    def merge_failed(self) -> None:
        self._retry_at = len(self) + max(1, self.merge_at // EVENT_KEY_SLICES)

    def sync(self, conn: sqlite3.Connection, top: int) -> None:
        """Catch up with the file, inside the writer's transaction; ``top`` is its highest seq."""
        merged = [m for (m,) in conn.execute("SELECT merged_seq FROM event_keys_state ORDER BY slice")]
        since = self._upto
        columns = "SELECT slice, gen, account, event_key, seq FROM event_keys_recent"
        for s, m in enumerate(merged):
            if m != self._merged[s]:  # first use, or another process merged this slice
                self._slices[s] = {}
                self._merged[s] = m
                self.add(conn.execute(f"{columns} WHERE slice = ?", (s,)))
            elif top > since:  # another process wrote events
                self.add(
                    conn.execute(
                        f"{columns} WHERE slice = ? AND gen >= ? AND seq > ?",
                        (s, (since + 1) >> EVENT_KEY_GEN_BITS, since),
                    )
                )
        self._upto = max(top, self._upto)

    def add(self, rows: Iterable[RecentRow]) -> None:
        """Rows of ``event_keys_recent``: committed by this writer, or read from the file."""
        slices = self._slices
        upto = self._upto
        for s, _, account, key, seq in rows:  # every event of every batch: kept inline
            into = slices[s]
            found = into.get((account, key))
            if found is None:
                into[(account, key)] = [seq]
            else:  # two eventIds of one hash, both stored: each is checked against its body
                found.append(seq)
            if seq > upto:
                upto = seq
        self._upto = upto

    def seqs(self, keys: Iterable[Key]) -> list[int]:
        """The seqs of the recent events behind these keys."""
        found: list[int] = []
        slices = self._slices
        for account, key in keys:
            hit = slices[event_key_slice(key)].get((account, key))
            if hit is not None:
                found += hit
        return found

    def merge(self, conn: sqlite3.Connection, top: int) -> int:
        """Move the fullest slice's recent keys into ``event_keys``, inside the writer's
        transaction; the slice, for ``merged`` once the transaction has committed."""
        self.sync(conn, top)
        s = max(range(EVENT_KEY_SLICES), key=lambda i: len(self._slices[i]))
        conn.execute(
            "INSERT INTO event_keys (account, event_key, seq) SELECT account, event_key, seq"
            " FROM event_keys_recent WHERE slice = ? ORDER BY account, event_key, seq",
            (s,),
        )
        conn.execute("DELETE FROM event_keys_recent WHERE slice = ?", (s,))
        conn.execute("UPDATE event_keys_state SET merged_seq = ? WHERE slice = ?", (top, s))
        return s

    def merged(self, s: int, top: int) -> None:
        self._slices[s] = {}
        self._merged[s] = top
        self._retry_at = 0


def recent_rows(placed: Sequence[Placed]) -> list[RecentRow]:
    """The ``event_keys_recent`` rows of placed events, in the table's order (fewer page splits)."""
    rows: list[RecentRow] = []
    for p in placed:
        for account, key, seq in zip(p.accounts(), p.unit.event_key, p.seqs, strict=True):
            assert account is not None  # every event has an account
            rows.append((event_key_slice(key), seq >> EVENT_KEY_GEN_BITS, account, key, seq))
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
