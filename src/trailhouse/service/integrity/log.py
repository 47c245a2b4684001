"""Each account's Merkle log: sequencing new events into it, and reading proofs out of it.

The entry of an event is its stored body, byte for byte what the native export and LookupEvents
return, so whoever holds an event holds its leaf: ``SHA-256(0x00 ‖ body)``, which ingest stores
beside the body (it has the bytes in hand), so sequencing reads hashes, not bodies. Leaves are in
arrival order (seq) per account. The sequencer (``sequence``) follows the store's commit-ordered log from
a watermark kept in the same transaction as the tiles and heads it writes; the store lets one
sequencer run at a time. Each step signs a new checkpoint for every account it extended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...model.query import Attr, EventFilter
from ...storage.base import EventLog, LogAppend, LogHead, LogLeaf, LogTile, LogView, MerkleLogStore
from .checkpoint import Checkpoint, sign_checkpoint
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    Levels,
    ProofError,
    RangeHash,
    aligned_subtrees,
    consistency_proof,
    inclusion_proof,
    range_hash_from_subtrees,
)
from .note import Signer
from .tiles import (
    INTERIOR_BYTES,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    entry_bundle,
    grow_tiles,
    interior_node,
    tile_interior,
    tile_width,
)

__all__ = [
    "FILL_BATCH",
    "SEQUENCE_BATCH",
    "SEQUENCE_PAUSE_S",
    "InclusionProof",
    "LogNotFound",
    "checkpoint_note",
    "consistency",
    "fill_interiors",
    "find_event_seq",
    "inclusion",
    "log_origin",
    "read_tile",
    "sequence",
]

#: Events per sequencing transaction: large enough to keep up with bulk ingest, small enough
#: that the transaction (which holds SQLite's writer) stays short.
SEQUENCE_BATCH = 5000
#: The sequencer's pause after a step that took fewer than SEQUENCE_BATCH events (it caught up):
#: events acknowledged meanwhile go into the next step together, so under steady ingest steps
#: are few and large (each signs a checkpoint per account, rewrites the edge tiles and takes
#: SQLite's one writer for a commit) rather than one per ingest batch. An acknowledged event
#: waits at most the step under way, this pause and one step: well inside the one-second promise.
SEQUENCE_PAUSE_S = 0.2


class LogNotFound(LookupError):
    """What was asked of the log is not in it (yet): an unknown event, a size beyond the tree, no tile."""


#: The lowest tile level whose full tiles keep their interior (migrations sqlite/0015, postgres/0014).
#: Level 0 has a tile per 256 events and its interior would be ~32 bytes per event; a proof hashes
#: its one level-0 tile instead (~255 SHA-256s, docs/benchmarks.md "Merkle log: bytes per event").
#: Level 1 and up: one tile per 65,536 events, and a proof reads their nodes.
INTERIOR_LEVEL = 1


def log_origin(signer: Signer, account_id: str) -> str:
    """The checkpoint origin of an account's log: the key's name, then the account."""
    return f"{signer.name}/{account_id}"


def _edge_reader(view: LogView, account: str) -> Callable[[int, int], bytes | None]:
    return lambda level, index: view.tile(account, level, index)


def sequencing_step(
    signer: Signer, now_ms: Callable[[], int]
) -> Callable[[list[LogLeaf], LogView], LogAppend]:
    """The pure step the store runs inside the sequencer's transaction."""

    def step(entries: list[LogLeaf], view: LogView) -> LogAppend:
        by_account: dict[str, list[LogLeaf]] = {}
        for entry in entries:
            by_account.setdefault(entry.account_id, []).append(entry)
        heads: list[LogHead] = []
        tiles: list[tuple[str, int, int, bytes]] = []
        interiors: dict[tuple[str, int, int], bytes] = {}
        leaves: list[tuple[str, int, list[int]]] = []
        stamp = now_ms()
        for account, new in by_account.items():
            head = view.head(account)
            size = head.size if head else 0
            # The whole batch at once, level by level (grow_tiles): the tiles, then the new
            # frontier from the edge tiles, so the signed root is the root of the served tiles.
            grown = grow_tiles(
                size,
                [entry.leaf for entry in new],
                _edge_reader(view, account),
                interiors_from=INTERIOR_LEVEL,
            )
            leaves.append((account, size, [entry.seq for entry in new]))
            root = Frontier.resume(grown.size, grown.subtrees).root()
            note = sign_checkpoint(Checkpoint(log_origin(signer, account), grown.size, root), signer)
            heads.append(LogHead(account, grown.size, root, b"".join(grown.subtrees), note, stamp))
            tiles += [(account, level, index, data) for (level, index), data in grown.changed.items()]
            interiors.update(
                ((account, level, index), data) for (level, index), data in grown.interiors.items()
            )
        return LogAppend(entries[-1].seq, heads, tiles, leaves, interiors)

    return step


#: Full tiles given their interior per call of ``fill_interiors``: a short pause of the sequencer.
FILL_BATCH = 64


def fill_interiors(store: MerkleLogStore, *, limit: int = FILL_BATCH) -> int:
    """Give up to ``limit`` full tiles of level ``INTERIOR_LEVEL`` and up of a store written
    before interiors were kept (migrations sqlite/0013, postgres/0011) their interior, so that
    proofs through them read one row instead of hashing the tile. How many lacked one: fewer than
    ``limit`` when the store is done."""
    return store.log_fill_interiors(tile_interior, limit=limit, min_level=INTERIOR_LEVEL)


def sequence(
    store: MerkleLogStore, signer: Signer, now_ms: Callable[[], int], *, limit: int = SEQUENCE_BATCH
) -> int:
    """Take the next events into their accounts' logs; how many (0: the logs are up to date)."""
    return store.log_sequence(sequencing_step(signer, now_ms), limit=limit)


def checkpoint_note(store: MerkleLogStore, signer: Signer, account_id: str) -> str:
    """The latest signed checkpoint of the account's log (an empty tree, signed now, if none yet)."""
    head = store.log_head(account_id=account_id)
    if head is not None:
        return head.checkpoint
    return sign_checkpoint(Checkpoint(log_origin(signer, account_id), 0, EMPTY_ROOT), signer)


class _Tiles:
    """The nodes of one account's tree at its latest head, for one proof.

    A proof's hashes are full subtrees. Those on the tree's right edge are the head's own full
    subtrees (its frontier, read with the head); every other one is a node inside one tile per
    tile level (the leaf's path), read from the tile's stored interior above level 0: a proof is
    about three store reads and a few hundred hashes, whatever the tree's size. The level-0 tile
    of the path (which keeps no interior, ``INTERIOR_LEVEL``), a partial tile, or a full one
    stored before interiors were kept (migrations sqlite/0013, postgres/0011) is hashed here.
    """

    def __init__(self, store: MerkleLogStore, account_id: str, head: LogHead) -> None:
        self._store, self._account = store, account_id
        heights = [h for h in range(head.size.bit_length() - 1, -1, -1) if head.size >> h & 1]
        if len(head.frontier) != len(heights) * HASH_SIZE:
            raise LogNotFound("the log's head is damaged: its full subtrees do not match its size")
        self._edge = {
            (h, (head.size >> h) - 1): head.frontier[i * HASH_SIZE : (i + 1) * HASH_SIZE]
            for i, h in enumerate(heights)
        }
        self._tiles: dict[tuple[int, int], LogTile] = {}
        self._levels: dict[tuple[int, int], Levels] = {}

    def proof(self, build: Callable[[RangeHash], list[bytes]]) -> list[bytes]:
        """Run ``build`` (a proof builder) once to learn the ranges it needs, read every tile they
        fall in with one store call, then run it for real."""
        ranges: list[tuple[int, int]] = []

        def record(lo: int, hi: int) -> bytes:
            ranges.append((lo, hi))
            return EMPTY_ROOT

        build(record)
        refs = {
            (height // TILE_HEIGHT, (index << height % TILE_HEIGHT) // TILE_WIDTH)
            for lo, hi in ranges
            for height, index in aligned_subtrees(lo, hi)
            if (height, index) not in self._edge
        }
        refs -= self._tiles.keys()
        if refs:
            self._tiles.update(self._store.log_proof_tiles(account_id=self._account, refs=sorted(refs)))
        return build(self.range_hash)

    def _tile(self, level: int, index: int) -> LogTile:
        tile = self._tiles.get((level, index))
        if tile is None:
            tile = self._store.log_proof_tiles(account_id=self._account, refs=[(level, index)]).get(
                (level, index)
            )
            if tile is None:
                raise LogNotFound(f"tile {level}/{index} is not stored")
            self._tiles[(level, index)] = tile
        return tile

    def tile(self, level: int, index: int) -> bytes:
        """The hashes of a stored tile (read once)."""
        return self._tile(level, index).hashes

    def node(self, height: int, index: int) -> bytes:
        edge = self._edge.get((height, index))
        if edge is not None:
            return edge
        level, rest = divmod(height, TILE_HEIGHT)
        tile_index, offset = divmod(index << rest, TILE_WIDTH)
        tile = self._tile(level, tile_index)
        if rest == 0 and len(tile.hashes) >= (offset + 1) * HASH_SIZE:
            return tile.hashes[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
        if tile.interior is not None and len(tile.interior) == INTERIOR_BYTES:
            return interior_node(tile.interior, rest, offset >> rest)
        # A partial tile (the leaf's own, near the right edge), or a full one without an interior:
        # its levels, one comprehension each.
        levels = self._levels.get((level, tile_index))
        if levels is None:
            data = tile.hashes
            levels = Levels([data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])
            self._levels[(level, tile_index)] = levels
        row = levels.levels[rest] if rest < len(levels.levels) else []
        if offset >> rest >= len(row):
            raise LogNotFound(f"tile {level}/{tile_index} does not hold node {height}/{index}")
        return row[offset >> rest]

    def range_hash(self, lo: int, hi: int) -> bytes:
        return range_hash_from_subtrees(lo, hi, self.node)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    path: list[bytes]
    checkpoint: str


def find_event_seq(store: EventLog, account_id: str, event_id: str) -> int | None:
    flt = EventFilter(-(1 << 62), 1 << 62, equals={Attr.EVENT_ID: (event_id,)})
    found = store.find_events(account_id=account_id, flt=flt, after=None, descending=False, limit=1)
    return found[0].seq if found else None


def inclusion(store: MerkleLogStore, account_id: str, seq: int) -> InclusionProof:
    """The proof that event ``seq`` is in the account's latest checkpoint."""
    head = store.log_head(account_id=account_id)
    index = store.log_leaf_index(account_id=account_id, seq=seq)
    if head is None or index is None or index >= head.size:
        raise LogNotFound("the event is not in the log yet (it is added within a second of ingest)")
    size = head.size
    path = _Tiles(store, account_id, head).proof(lambda range_hash: inclusion_proof(index, size, range_hash))
    return InclusionProof(index, size, path, head.checkpoint)


def consistency(store: MerkleLogStore, account_id: str, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the account's tree of ``old_size`` leaves is a prefix of that of ``new_size``."""
    head = store.log_head(account_id=account_id)
    size = head.size if head else 0
    if not 0 <= old_size <= new_size <= size:
        raise LogNotFound(f"the log has {size} leaves: sizes must satisfy 0 ≤ from ≤ to ≤ {size}")
    if head is None:
        return []  # from 0 to 0
    try:
        return _Tiles(store, account_id, head).proof(
            lambda range_hash: consistency_proof(old_size, new_size, range_hash)
        )
    except ProofError as exc:  # a damaged store: say so rather than answer a wrong proof
        raise LogNotFound(str(exc)) from None


def read_tile(store: MerkleLogStore, events: EventLog, account_id: str, ref: TileRef) -> bytes:
    """A hash tile or entry bundle, as tlog-tiles serves it, if the latest checkpoint covers it."""
    head = store.log_head(account_id=account_id)
    size = head.size if head else 0
    if ref.width > tile_width(ref, size):
        raise LogNotFound("the log's latest checkpoint does not cover that tile")
    if ref.level is None:
        start = ref.index * TILE_WIDTH
        seqs = store.log_leaf_seqs(account_id=account_id, start=start, end=start + ref.width)
        bodies = events.events_by_seq(account_id=account_id, seqs=seqs)
        missing = [s for s in seqs if s not in bodies]
        if len(seqs) != ref.width or missing:
            raise LogNotFound("events of that bundle are no longer stored")
        return entry_bundle([bodies[s].body for s in seqs])
    data = store.log_tiles(account_id=account_id, refs=[(ref.level, ref.index)]).get((ref.level, ref.index))
    if data is None or len(data) < ref.width * HASH_SIZE:
        raise LogNotFound("that tile is not stored")
    return data[: ref.width * HASH_SIZE]
