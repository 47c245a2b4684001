"""The Merkle log's SQL (migrations sqlite/0007, 0013, 0015 and 0016, postgres/0005, 0011, 0014
and 0015), for both backends; which event each leaf is lives in ``leaf_tiles`` (one row per 256
leaves). The leaves not yet logged wait in ``log_pending``, written by ingest.

A backend supplies ``_log_transaction``: a context that holds the sequencer lock (SQLite: the
write lock and ``BEGIN IMMEDIATE``; PostgreSQL: the ``log_sequencer`` row ``FOR UPDATE``) and
yields a statement runner inside that transaction. Everything else is written once here. Reading
and hashing happen before the lock; the write checks the watermark is still the one read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..base import LogAppend, LogHead, LogLeaf, LogTile, LogView, StoreError
from .dialect import Dialect
from .leaf_tiles import LEAF_TILE, leaf_tile_rows, seq_position, unpack_seqs, upsert_leaf_tiles

__all__ = ["MerkleLogSql", "Run"]

#: The bytes of a full tile's hashes: 256 of 32 bytes (service/integrity/tiles.py's width).
FULL_TILE_BYTES = 256 * 32

#: Runs one statement in the sequencer's transaction: (sql, params, many) -> rows (reads) or [].
Run = Callable[[str, Sequence[Any], bool], list[Any]]


class _View:
    def __init__(self, store: MerkleLogSql, run: Run) -> None:
        self._store, self._run = store, run
        self._ph = store.dialect.ph

    def head(self, account_id: str) -> LogHead | None:
        ref = self._store._term_id(account_id)
        if ref is None:
            return None
        rows = self._run(
            f"SELECT size, root, frontier, checkpoint, updated_ms FROM log_heads WHERE account = {self._ph}",
            (ref,),
            False,
        )
        return _head(account_id, rows[0]) if rows else None

    def tile(self, account_id: str, level: int, index: int) -> bytes | None:
        ref = self._store._term_id(account_id)
        ph = self._ph
        rows = self._run(
            f"SELECT hashes FROM log_tiles WHERE account = {ph} AND level = {ph} AND idx = {ph}",
            (ref, level, index),
            False,
        )
        return bytes(rows[0][0]) if rows else None


def _head(account_id: str, row: Sequence[Any]) -> LogHead:
    size, root, frontier, checkpoint, updated = row
    return LogHead(account_id, int(size), bytes(root), bytes(frontier), str(checkpoint), int(updated))


class MerkleLogSql:
    """The Merkle log methods of an SQL store (mixed into SqliteStore and PostgresStore)."""

    dialect: Dialect

    def _term_id(self, value: str) -> int | None:
        raise NotImplementedError

    def _guard(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def _read_log_leaves(self, *, after_seq: int, limit: int) -> list[LogLeaf]:
        """``read_log``'s events as leaves, from the ``log_pending`` queue ingest writes: the leaf
        hash stored by ingest (hashed from the body for events stored before there was one), in
        the same commit-safe seq order."""
        raise NotImplementedError

    def _log_transaction(self) -> AbstractContextManager[Run]:
        raise NotImplementedError

    def log_sequence(self, step: Callable[[list[LogLeaf], LogView], LogAppend], *, limit: int) -> int:
        ph = self.dialect.ph
        # Optimistic: read and hash outside the lock, so that ingest is not held up while the
        # step hashes; write only if no other sequencer moved the watermark meanwhile (every write
        # of the log moves it, so an unchanged watermark means everything read is still current).
        with self._guard():
            watermark = self._log_watermark()
            entries = self._read_log_leaves(after_seq=watermark, limit=limit)
            if not entries:
                return 0
            try:
                done = step(entries, _View(self, lambda sql, params, many: self._read(sql, params)))
            except Exception:
                # Reads that straddled another sequencer's commit can disagree (a new head, an
                # old tile): if the watermark moved, start over from it next round.
                if self._log_watermark() != watermark:
                    return 0
                raise
        if done.watermark <= watermark:
            raise StoreError("a sequencing step must move the watermark forward")
        with self._guard(), self._log_transaction() as run:
            ((current,),) = run("SELECT watermark FROM log_sequencer WHERE id = 1", (), False)
            if int(current) != watermark:
                return 0  # another sequencer went first: the next round starts from its watermark
            refs: dict[str, int] = {}
            for account in {h.account_id for h in done.heads}:
                ref = self._term_id(account)
                if ref is None:
                    raise StoreError(f"no stored events for account {account!r}")
                refs[account] = ref
            # One row per 256 leaves: the account's partial tile row (read here, under the lock)
            # is extended, then the rows this step touched are written whole.
            tile_rows = [
                row
                for account, first, seqs in done.leaves
                for row in leaf_tile_rows(run, ph, refs[account], first, seqs)
            ]
            if tile_rows:
                run(upsert_leaf_tiles(ph), tile_rows, True)
            if done.tiles:
                interiors = done.interiors
                run(
                    "INSERT INTO log_tiles (account, level, idx, hashes, interior)"
                    f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}) ON CONFLICT (account, level, idx)"
                    " DO UPDATE SET hashes = excluded.hashes, interior = excluded.interior",
                    [
                        (refs[a], level, index, hashes, interiors.get((a, level, index)))
                        for a, level, index, hashes in done.tiles
                    ],
                    True,
                )
            run(
                "INSERT INTO log_heads (account, size, root, frontier, checkpoint, updated_ms)"
                f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph}) ON CONFLICT (account) DO UPDATE SET"
                " size = excluded.size, root = excluded.root, frontier = excluded.frontier,"
                " checkpoint = excluded.checkpoint, updated_ms = excluded.updated_ms",
                [
                    (refs[h.account_id], h.size, h.root, h.frontier, h.checkpoint, h.updated_ms)
                    for h in done.heads
                ],
                True,
            )
            run(f"UPDATE log_sequencer SET watermark = {ph} WHERE id = 1", (done.watermark,), False)
            # The queue gives up what is now logged in the transaction that logs it: a crash on
            # either side of the commit leaves each leaf either queued or logged, never both.
            # A row logged in part stays (storage/sql/pending.py): the next read starts past it.
            run(f"DELETE FROM log_pending WHERE last_seq <= {ph}", (done.watermark,), False)
            return len(entries)

    def _write(self, query: str, params: Sequence[object]) -> int:
        raise NotImplementedError

    def log_claim(self, *, owner: str, now_ms: int, lease_ms: int) -> bool:
        ph = self.dialect.ph
        with self._guard():
            claimed = self._write(
                f"UPDATE log_sequencer SET owner = {ph}, lease_until = {ph}"
                f" WHERE id = 1 AND (owner = {ph} OR lease_until < {ph})",
                (owner, now_ms + lease_ms, owner, now_ms),
            )
        return claimed == 1

    def log_fill_interiors(self, interior_of: Callable[[bytes], bytes], *, limit: int, min_level: int) -> int:
        ph = self.dialect.ph
        # A full tile's hashes never change, so an interior computed outside the sequencer's lock
        # is right whenever it lands; "IS NULL" keeps a racing writer's from being written twice.
        # Tiles below min_level keep none (level 0 since migrations sqlite/0015, postgres/0014).
        with self._guard():
            rows = self._read(
                f"SELECT account, level, idx, hashes FROM log_tiles WHERE level >= {int(min_level)}"
                f" AND interior IS NULL AND length(hashes) = {FULL_TILE_BYTES} LIMIT {int(limit)}"
            )
        for account, level, index, hashes in rows:
            with self._guard():
                self._write(
                    f"UPDATE log_tiles SET interior = {ph}"
                    f" WHERE account = {ph} AND level = {ph} AND idx = {ph} AND interior IS NULL",
                    (interior_of(bytes(hashes)), account, level, index),
                )
        return len(rows)

    def log_head(self, *, account_id: str) -> LogHead | None:
        with self._guard():
            ref = self._term_id(account_id)
            if ref is None:
                return None
            rows = self._read(
                "SELECT size, root, frontier, checkpoint, updated_ms FROM log_heads"
                f" WHERE account = {self.dialect.ph}",
                (ref,),
            )
        return _head(account_id, rows[0]) if rows else None

    def log_tiles(self, *, account_id: str, refs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        ph = self.dialect.ph
        found: dict[tuple[int, int], bytes] = {}
        with self._guard():
            ref = self._term_id(account_id)
            if ref is None:
                return found
            for level, index in sorted(set(refs)):
                rows = self._read(
                    f"SELECT hashes FROM log_tiles WHERE account = {ph} AND level = {ph} AND idx = {ph}",
                    (ref, level, index),
                )
                if rows:
                    found[(level, index)] = bytes(rows[0][0])
        return found

    def log_proof_tiles(
        self, *, account_id: str, refs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], LogTile]:
        ph = self.dialect.ph
        wanted = sorted(set(refs))
        if not wanted:
            return {}
        with self._guard():
            ref = self._term_id(account_id)
            if ref is None:
                return {}
            # One statement of point reads (a proof needs about one tile per level): one round
            # trip, each part a primary-key lookup on both backends.
            one = (
                "SELECT level, idx, hashes, interior FROM log_tiles"
                f" WHERE account = {ph} AND level = {ph} AND idx = {ph}"
            )
            rows = self._read(
                " UNION ALL ".join([one] * len(wanted)),
                [p for level, index in wanted for p in (ref, level, index)],
            )
        return {
            (int(level), int(index)): LogTile(bytes(hashes), None if interior is None else bytes(interior))
            for level, index, hashes, interior in rows
        }

    def log_leaf_index(self, *, account_id: str, seq: int) -> int | None:
        ph = self.dialect.ph
        with self._guard():
            ref = self._term_id(account_id)
            if ref is None:
                return None
            # The account's tile row that starts at or before seq: one descent of the index on
            # (account, first_seq) on both backends (a backward range scan stopped at one row).
            rows = self._read(
                f"SELECT tile, first_seq, gaps FROM log_leaf_tiles WHERE account = {ph} AND first_seq <= {ph}"
                " ORDER BY first_seq DESC LIMIT 1",
                (ref, seq),
            )
        if not rows:
            return None
        tile, first, gaps = rows[0]
        at = seq_position(unpack_seqs(int(first), bytes(gaps)), seq)
        return None if at is None else int(tile) * LEAF_TILE + at

    def log_leaf_seqs(self, *, account_id: str, start: int, end: int) -> list[int]:
        ph = self.dialect.ph
        if end <= start:
            return []
        with self._guard():
            ref = self._term_id(account_id)
            if ref is None:
                return []
            rows = self._read(
                f"SELECT tile, first_seq, gaps FROM log_leaf_tiles WHERE account = {ph}"
                f" AND tile >= {ph} AND tile <= {ph} ORDER BY tile",
                (ref, start // LEAF_TILE, (end - 1) // LEAF_TILE),
            )
        seqs: list[int] = []
        for tile, first, gaps in rows:
            base = int(tile) * LEAF_TILE
            tile_seqs = unpack_seqs(int(first), bytes(gaps))
            seqs += tile_seqs[max(0, start - base) : end - base]
        return seqs

    def _log_watermark(self) -> int:
        return int(self._read("SELECT watermark FROM log_sequencer WHERE id = 1")[0][0])

    def log_watermark(self) -> int:
        with self._guard():
            return self._log_watermark()
