"""RFC 6962 hashing and proofs: the published vectors, and properties over random trees."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.service.integrity.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    memory_range_hash,
    range_hash_from_subtrees,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "transparency_dev_merkle_vectors.json").read_text())
LEAVES = [leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]


def b64(s: str) -> bytes:
    return base64.b64decode(s)


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaves([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_rfc6962_reference_tree(size: int) -> None:
    assert root_from_leaves(LEAVES[:size]).hex() == VECTORS["roots_hex"][size - 1]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leafIdx']}of{c['treeSize']}")
def test_inclusion_vectors(case: dict) -> None:
    proof = [b64(p) for p in case["proof"] or []]
    verify_inclusion(case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"]))
    # Our builder produces exactly the published proof from the reference leaves.
    built = inclusion_proof(case["leafIdx"], case["treeSize"], memory_range_hash(LEAVES[: case["treeSize"]]))
    assert built == proof


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}to{c['size2']}")
def test_consistency_vectors(case: dict) -> None:
    proof = [b64(p) for p in case["proof"] or []]
    verify_consistency(case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof)
    built = consistency_proof(case["size1"], case["size2"], memory_range_hash(LEAVES[: case["size2"]]))
    assert built == proof


def test_published_error_cases_are_rejected() -> None:
    case = VECTORS["inclusion"][0]
    proof = [b64(p) for p in case["proof"]]
    root, leaf = b64(case["root"]), b64(case["leafHash"])
    for index, size, p in [
        (1, 8, proof),
        (0, 4, proof),
        (0, 16, proof),
        (0, 8, proof[:-1]),
        (0, 8, [*proof, root]),
    ]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, p, root)
    with pytest.raises(ProofError):
        verify_inclusion(0, 8, LEAVES[1], proof, root)


trees = st.lists(st.binary(max_size=12), min_size=1, max_size=140)


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_inclusion_proof_verifies_and_every_bit_flip_is_rejected(
    entries: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(e) for e in entries]
    size = len(leaves)
    root = root_from_leaves(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, memory_range_hash(leaves))
    verify_inclusion(index, size, leaves[index], proof, root)
    # A changed entry.
    entry = bytearray(entries[index] or b"\x00")
    bit = data.draw(st.integers(0, len(entry) * 8 - 1))
    entry[bit // 8] ^= 1 << (bit % 8)
    if bytes(entry) != entries[index]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf_hash(bytes(entry)), proof, root)
    # A changed proof hash.
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofError):
            verify_inclusion(
                index, size, leaves[index], [*proof[:which], bytes(bad), *proof[which + 1 :]], root
            )


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_consistency_proof_verifies_and_every_bit_flip_is_rejected(
    entries: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(e) for e in entries]
    new = len(leaves)
    old = data.draw(st.integers(1, new))
    proof = consistency_proof(old, new, memory_range_hash(leaves))
    old_root, new_root = root_from_leaves(leaves[:old]), root_from_leaves(leaves)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofError):
            verify_consistency(
                old, new, old_root, new_root, [*proof[:which], bytes(bad), *proof[which + 1 :]]
            )
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(old_root)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProofError):
        verify_consistency(old, new, bytes(flipped), new_root, proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000))
def test_frontier_resumes_and_matches(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    frontier = Frontier()
    frontier.extend(leaves[: size // 2])
    resumed = Frontier.resume(frontier.size, frontier.subtrees())
    resumed.extend(leaves[size // 2 :])
    assert resumed.root() == root_from_leaves(leaves)


def test_range_hash_from_subtrees_matches_memory() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(37)]
    memory = memory_range_hash(leaves)

    def subtree(height: int, index: int) -> bytes:
        return root_from_leaves(leaves[index << height : (index + 1) << height])

    for lo, hi in [(0, 37), (32, 37), (16, 32), (36, 37), (0, 1)]:
        assert range_hash_from_subtrees(lo, hi, subtree) == memory(lo, hi)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1100), st.data())
def test_levels_give_every_prefix_root(size: int, data: st.DataObject) -> None:
    from trailhouse.service.integrity.merkle import Levels, leaf_hashes

    leaves = leaf_hashes(i.to_bytes(4, "big") for i in range(size))
    prefix = data.draw(st.integers(0, size))
    assert Levels(leaves).root(prefix) == root_from_leaves(leaves[:prefix])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=70), st.data())
def test_cross_check_with_pymerkle(entries: list[bytes], data: st.DataObject) -> None:
    """pymerkle (an independent implementation, RFC 6962 prefixes) agrees on every root and
    accepts our proofs' roots; its leaf indices count from one."""
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    leaves = [leaf_hash(e) for e in entries]
    for size in range(1, len(entries) + 1):
        assert tree.get_root(size) == root_from_leaves(leaves[:size])
        assert tree.get_leaf(size) == leaves[size - 1]
    index = data.draw(st.integers(0, len(entries) - 1))
    size = data.draw(st.integers(index + 1, len(entries)))
    proof = inclusion_proof(index, size, memory_range_hash(leaves[:size]))
    verify_inclusion(index, size, leaves[index], proof, tree.get_root(size))
    old = data.draw(st.integers(1, size))
    consistency = consistency_proof(old, size, memory_range_hash(leaves[:size]))
    verify_consistency(old, size, tree.get_root(old), tree.get_root(size), consistency)
