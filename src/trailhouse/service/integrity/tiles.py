"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, tile contents, entry bundles.

A tile at level L holds up to 256 consecutive hashes of tree height 8·L: level 0 holds leaf
hashes, level 1 the roots of full level-0 tiles, and so on. A full tile is 8,192 bytes; the last
tile of a level may be partial, served as ``<N>.p/<W>`` (W hashes). An entry bundle holds the
entries of one level-0 tile, each prefixed by its length as a big-endian uint16.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from .merkle import HASH_SIZE, ProofError, root_from_leaves

__all__ = [
    "TILE_WIDTH",
    "EntryTooLarge",
    "TileAppender",
    "TileGrowth",
    "TileRef",
    "entry_bundle",
    "interior_node",
    "tile_interior",
    "grow_tiles",
    "parse_entry_bundle",
    "parse_tile_path",
    "tile_node",
    "tile_path",
    "tile_width",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_ENTRY = 0xFFFF

_INDEX = re.compile(r"(?:x\d{3}/)*\d{3}")


class EntryTooLarge(ValueError):
    """An entry over 65,535 bytes, which a tlog-tiles entry bundle cannot carry."""


@dataclass(frozen=True, slots=True)
class TileRef:
    """A tile: its level (``None`` for an entry bundle), index and width (256 unless partial)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH


def encode_index(index: int) -> str:
    groups = f"{index:03d}"
    # Pad to a multiple of three digits, then x-prefix every group but the last.
    groups = groups.zfill(-(-len(groups) // 3) * 3)
    parts = [groups[i : i + 3] for i in range(0, len(groups), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def tile_path(ref: TileRef) -> str:
    """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
    head = "entries" if ref.level is None else str(ref.level)
    tail = "" if ref.width == TILE_WIDTH else f".p/{ref.width}"
    return f"tile/{head}/{encode_index(ref.index)}{tail}"


def parse_tile_path(path: str) -> TileRef:
    """The tile a path under ``tile/`` names (without the ``tile/`` prefix); ValueError if none."""
    head, _, rest = path.partition("/")
    if head == "entries":
        level = None
    elif head.isdigit() and len(head) <= 2 and (head == "0" or not head.startswith("0")):
        level = int(head)
    else:
        raise ValueError(f"not a tile level: {head!r}")
    width = TILE_WIDTH
    if ".p/" in rest:
        rest, _, w = rest.partition(".p/")
        if not w.isdigit() or w.startswith("0") or not 1 <= int(w) < TILE_WIDTH:
            raise ValueError(f"a partial tile's width is 1 to 255: {w!r}")
        width = int(w)
    if not _INDEX.fullmatch(rest):
        raise ValueError(f"not a tile index: {rest!r}")
    index = int(rest.replace("x", "").replace("/", ""))
    if encode_index(index) != rest:
        raise ValueError(f"a tile index has no leading zero groups: {rest!r}")
    return TileRef(level, index, width)


def tile_width(ref: TileRef, tree_size: int) -> int:
    """How many hashes (or entries) the tile holds in a tree of ``tree_size`` leaves (0: none yet)."""
    count = tree_size >> (TILE_HEIGHT * (ref.level or 0))
    return max(0, min(TILE_WIDTH, count - ref.index * TILE_WIDTH))


def tile_node(height: int, index: int, read_tile: Callable[[int, int], bytes]) -> bytes:
    """The hash of node (height, index) from the tile holding its subtree's hashes."""
    level, rest = divmod(height, TILE_HEIGHT)
    first = index << rest
    tile_index, offset = divmod(first, TILE_WIDTH)
    data = read_tile(level, tile_index)
    end = offset + (1 << rest)
    if len(data) < end * HASH_SIZE:
        raise ProofError(f"tile {level}/{tile_index} holds {len(data) // HASH_SIZE} hashes, not {end}")
    hashes = [data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(offset, end)]
    return hashes[0] if rest == 0 else root_from_leaves(hashes)


class TileAppender:
    """Appends leaf hashes to the right edge of a tiled tree; says which tiles changed.

    Built from the tree size and the partial tile of each level (the only ones that can grow).
    """

    def __init__(self, size: int, partial: Callable[[int, int], bytes | None]) -> None:
        self.size = size
        self._edges: dict[int, bytearray] = {}
        level = 0
        while size >> (TILE_HEIGHT * level):
            count = size >> (TILE_HEIGHT * level)
            if count % TILE_WIDTH:
                data = partial(level, count // TILE_WIDTH) or b""
                if len(data) != (count % TILE_WIDTH) * HASH_SIZE:
                    raise ProofError(f"the stored edge tile of level {level} is damaged")
                self._edges[level] = bytearray(data)
            level += 1
        #: Tiles completed while appending (full, final), and the edge tiles touched.
        self._full: dict[tuple[int, int], bytes] = {}
        self._touched: set[int] = set()

    def append(self, leaf: bytes, roots: Sequence[bytes] | None = None) -> None:
        """Add a leaf hash. ``roots``: the tile roots it completed, as ``Frontier.append`` returns
        them (saves hashing each completed tile again); computed here when not given."""
        level, value = 0, leaf
        while True:
            edge = self._edges.setdefault(level, bytearray())
            edge += value
            self._touched.add(level)
            if len(edge) < TILE_BYTES:
                break
            # A completed tile's root is the next level's next hash (its count is the new size
            # shifted, which equals the old size shifted plus one exactly when the tile completes).
            tile_index = (self.size >> (TILE_HEIGHT * level)) // TILE_WIDTH
            self._full[(level, tile_index)] = bytes(edge)
            if roots is not None:
                value = roots[level]
            else:
                value = root_from_leaves(
                    [bytes(edge[i : i + HASH_SIZE]) for i in range(0, TILE_BYTES, HASH_SIZE)]
                )
            self._edges[level] = bytearray()
            level += 1
        self.size += 1

    @property
    def changed(self) -> dict[tuple[int, int], bytes]:
        """Every tile that differs from what was stored: (level, index) -> its hashes."""
        changed = dict(self._full)
        for level in self._touched:
            edge = self._edges.get(level)
            if edge:
                changed[(level, (self.size >> (TILE_HEIGHT * level)) // TILE_WIDTH)] = bytes(edge)
        return changed


@dataclass(frozen=True, slots=True)
class TileGrowth:
    """What appending a batch of leaves did to a tiled tree."""

    size: int
    #: Every tile that differs from what was stored: (level, index) -> its hashes.
    changed: dict[tuple[int, int], bytes]
    #: The roots of the full subtrees of the new tree, left to right (a ``Frontier``'s).
    subtrees: list[bytes]
    #: The interior of each tile this batch completed (``tile_interior``): (level, index) -> it.
    interiors: dict[tuple[int, int], bytes] = field(default_factory=dict)


def _perfect_levels(hashes: list[bytes]) -> list[list[bytes]]:
    """The levels above a power-of-two count of hashes, up to their root, one comprehension each."""
    sha256 = hashlib.sha256
    levels = []
    while len(hashes) > 1:
        hashes = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(hashes[0::2], hashes[1::2], strict=True)
        ]
        levels.append(hashes)
    return levels


def _perfect_root(hashes: list[bytes]) -> bytes:
    """MTH of a power-of-two count of hashes."""
    return _perfect_levels(hashes)[-1][0] if len(hashes) > 1 else hashes[0]


#: Where row r (1..8) of a full tile's interior starts, in hashes: rows of 128, 64, …, 1.
_ROW_START = [0, *(TILE_WIDTH - (2 * TILE_WIDTH >> r) for r in range(1, TILE_HEIGHT + 1))]
INTERIOR_BYTES = (TILE_WIDTH - 1) * HASH_SIZE


def tile_interior(hashes: bytes) -> bytes:
    """The interior of a full tile: the 255 hashes of the subtree above its 256, row by row
    (128 of height 1, 64 of height 2, …, its root), so that a proof reads any node of the tile
    instead of hashing the tile again (about 255 SHA-256s a tile, most of a proof's cost)."""
    if len(hashes) != TILE_BYTES:
        raise ProofError(f"a full tile holds {TILE_BYTES} bytes, not {len(hashes)}")
    return b"".join(b"".join(row) for row in _perfect_levels(_split(hashes)))


def interior_node(interior: bytes, rest: int, offset: int) -> bytes:
    """Node ``offset`` of height ``rest`` (1..8) above a full tile's hashes, from its interior."""
    at = (_ROW_START[rest] + offset) * HASH_SIZE
    return interior[at : at + HASH_SIZE]


def _split(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def grow_tiles(
    size: int,
    leaves: Sequence[bytes],
    partial: Callable[[int, int], bytes | None],
    *,
    interiors_from: int = 0,
) -> TileGrowth:
    """Append leaf hashes to a tiled tree of ``size`` leaves, a batch at a time: the same tiles as
    ``TileAppender`` and the same subtrees as ``Frontier``, but level by level in comprehensions
    (about one SHA-256 per leaf, and no Python loop per leaf), which is what lets the sequencer keep
    pace with ingest. ``partial(level, index)`` reads a stored partial tile (the right edge).
    The interiors of completed tiles are given for levels ``interiors_from`` and up."""
    new_size = size + len(leaves)
    changed: dict[tuple[int, int], bytes] = {}
    interiors: dict[tuple[int, int], bytes] = {}
    edges: dict[int, list[bytes]] = {}  # each level's partial tile after the append
    incoming = list(leaves)
    level = 0
    while incoming:
        before = size >> (TILE_HEIGHT * level)
        first = before // TILE_WIDTH
        start: list[bytes] = []
        if before % TILE_WIDTH:
            data = partial(level, first) or b""
            if len(data) != (before % TILE_WIDTH) * HASH_SIZE:
                raise ProofError(f"the stored edge tile of level {level} is damaged")
            start = _split(data)
        hashes = start + incoming
        incoming = []  # the roots of tiles this level completes: the next level's new hashes
        for offset in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[offset : offset + TILE_WIDTH]
            key = (level, first + offset // TILE_WIDTH)
            changed[key] = b"".join(chunk)
            if len(chunk) == TILE_WIDTH:
                rows = _perfect_levels(chunk)
                if level >= interiors_from:
                    interiors[key] = b"".join(b"".join(row) for row in rows)
                incoming.append(rows[-1][0])
            else:
                edges[level] = chunk
        level += 1
    # A full subtree of height h = 8·L + r (r < 8) is 2^r consecutive hashes of level L inside
    # that level's partial tile (bit r of the level's count is set, so that tile is not full).
    subtrees: list[bytes] = []
    for height in range(new_size.bit_length() - 1, -1, -1):
        if not new_size >> height & 1:
            continue
        lvl, rest = divmod(height, TILE_HEIGHT)
        count = new_size >> (TILE_HEIGHT * lvl)
        edge = edges.get(lvl)
        if edge is None:  # a level this batch did not reach: its stored partial tile
            data = partial(lvl, count // TILE_WIDTH) or b""
            if len(data) != (count % TILE_WIDTH) * HASH_SIZE:
                raise ProofError(f"the stored edge tile of level {lvl} is damaged")
            edge = edges[lvl] = _split(data)
        offset = ((new_size >> (height + 1)) << (rest + 1)) % TILE_WIDTH  # the higher subtrees before it
        subtrees.append(_perfect_root(edge[offset : offset + (1 << rest)]))
    return TileGrowth(new_size, changed, subtrees, interiors)


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise EntryTooLarge(f"an entry of {len(entry)} bytes does not fit an entry bundle")
        out += struct.pack(">H", len(entry)) + entry
    return bytes(out)


def parse_entry_bundle(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("an entry bundle ends inside a length")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + length > len(data):
            raise ValueError("an entry bundle ends inside an entry")
        yield data[pos : pos + length]
        pos += length
