"""Merkle tree hashing, proofs and their verification, as RFC 6962 / RFC 9162 §2.1 define them.

Leaf ``SHA-256(0x00 ‖ entry)``, node ``SHA-256(0x01 ‖ left ‖ right)``, a tree of n leaves split
at the largest power of two below n. Proof builders take ``range_hash(lo, hi)``, the hash of the
subtree over leaves [lo, hi), so that the same code serves an in-memory list and a store read
through tiles (``tiles.py``): every range they ask for starts at a multiple of a power of two at
least as large as itself, which a store answers from O(log n) stored full subtrees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "aligned_subtrees",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "Levels",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "range_hash_from_subtrees",
    "root_from_leaves",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: The hash of the empty tree: SHA-256 of nothing (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]
_sha256 = hashlib.sha256
_LEAF_PREFIX = hashlib.sha256(b"\x00")


class ProofError(ValueError):
    """A proof that does not prove what it claims (or a request no proof can answer)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """A tree grown one leaf at a time, keeping only the roots of its full subtrees (a compact range).

    Appending is amortised O(1) hashes; ``root`` folds the O(log n) kept roots right to left. The
    verifier rebuilds million-leaf trees with it in one pass and constant memory.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        # (height, hash) of each full subtree, left to right, heights strictly decreasing.
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> list[bytes] | None:
        """Add a leaf; the subtrees of height 8, 16, … it completed (tile roots), if any."""
        height, value = 0, leaf
        stack = self._stack
        completed = None
        while stack and stack[-1][0] == height:
            value = _sha256(b"\x01" + stack.pop()[1] + value).digest()
            height += 1
            if not height & 7:
                completed = [*(completed or ()), value]
        stack.append((height, value))
        self.size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value

    def subtrees(self) -> list[bytes]:
        """The full subtrees' roots, left to right (what a digest carries to resume the tree)."""
        return [value for _, value in self._stack]

    @classmethod
    def resume(cls, size: int, subtrees: Sequence[bytes]) -> Frontier:
        """A frontier of ``size`` leaves from its subtrees' roots (one per set bit of size)."""
        heights = [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]
        if len(heights) != len(subtrees):
            raise ProofError(f"a tree of {size} leaves has {len(heights)} full subtrees, not {len(subtrees)}")
        frontier = cls()
        frontier._stack = list(zip(heights, subtrees, strict=True))
        frontier.size = size
        return frontier


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of many entries (a comprehension: the verifier's hot loop)."""
    # Copying a hasher primed with the prefix spares concatenating (copying) each entry.
    primed = _LEAF_PREFIX.copy
    out: list[bytes] = []
    append = out.append
    for entry in entries:
        h = primed()
        h.update(entry)
        append(h.digest())
    return out


class Levels:
    """Every full subtree of a tree held in memory, built level by level.

    ``levels[h][i]`` is the root of leaves [i·2^h, (i+1)·2^h); each level is one comprehension,
    several times faster in Python than growing a frontier leaf by leaf. The root of any prefix
    is then O(log n): the verifier checks many checkpoints against one pass over the leaves.
    """

    def __init__(self, leaves: list[bytes]) -> None:
        sha256 = hashlib.sha256
        self.levels = [leaves]
        level = leaves
        while len(level) > 1:
            level = [
                sha256(b"\x01" + left + right).digest()
                for left, right in zip(level[0::2], level[1::2], strict=False)
            ]
            self.levels.append(level)

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves."""
        if not 0 <= size <= len(self.levels[0]):
            raise ProofError(f"the tree holds {len(self.levels[0])} leaves, not {size}")
        return range_hash_from_subtrees(0, size, lambda h, i: self.levels[h][i])


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    """MTH of the given leaf hashes."""
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


def aligned_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The full subtrees (height, index) that leaves [lo, hi) are cut into, in decreasing size.

    [lo, hi) must start at a multiple of the largest power of two not above its length (as every
    range a proof asks for does).
    """
    nodes: list[tuple[int, int]] = []
    start = lo
    while start < hi:
        height = (hi - start).bit_length() - 1
        if start % (1 << height):
            raise ProofError(f"the range [{lo}, {hi}) is not aligned")
        nodes.append((height, start >> height))
        start += 1 << height
    return nodes


def range_hash_from_subtrees(lo: int, hi: int, subtree: Callable[[int, int], bytes]) -> bytes:
    """MTH of leaves [lo, hi) from full aligned subtrees ``subtree(height, index)``
    (``aligned_subtrees``), folded right to left."""
    parts = [subtree(height, index) for height, index in aligned_subtrees(lo, hi)]
    if not parts:
        return EMPTY_ROOT
    value = parts[-1]
    for left in reversed(parts[:-1]):
        value = node_hash(left, value)
    return value


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, bottom-up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, range_hash: RangeHash) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.2, bottom-up.

    Empty when old_size is 0 or equals new_size."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size == 0 or old_size == new_size:
        return []
    path: list[bytes] = []
    lo, hi, whole = 0, new_size, True
    while True:
        if old_size == hi:
            if not whole:
                path.append(range_hash(lo, hi))
            break
        k = split_point(hi - lo)
        if old_size - lo <= k:
            path.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k))
            lo += k
            whole = False
    path.reverse()
    return path


def _check_hashes(*hashes: bytes) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("a hash is not 32 bytes")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError unless ``leaf`` is leaf ``index`` of the tree ``root``."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless tree ``old_root`` is a prefix of tree ``new_root``."""
    _check_hashes(old_root, new_root, *proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("two different roots for the same tree size")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise ProofError("the consistency proof does not lead to both roots")


def memory_range_hash(leaves: Sequence[bytes]) -> RangeHash:
    """``range_hash`` over an in-memory list of leaf hashes (tests, the verifier, small trees)."""

    def range_hash(lo: int, hi: int) -> bytes:
        return root_from_leaves(leaves[lo:hi])

    return range_hash
