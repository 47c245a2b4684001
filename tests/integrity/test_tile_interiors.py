"""Stored tile interiors (migrations sqlite/0013, postgres/0011; level 1 and up only since sqlite/0015,
postgres/0014): what the sequencer stores beside a full tile is that tile's subtree, and proofs read
from it are the proofs of the leaves themselves, with or without interiors (level-0 tiles, or a
store written before them), on SQLite and PostgreSQL.

A level-1 tile is full at 65,536 leaves: too many for a test. The tests that need stored interiors
lower ``log.INTERIOR_LEVEL`` to 0, so that the level-0 tiles of a few hundred leaves take the path
(stored, filled, read by proofs) that tiles of level 1 and up take in a real log."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integrity.test_log_server import A, make_event
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity import log
from trailhouse.service.integrity.log import consistency, fill_interiors, inclusion, sequence
from trailhouse.service.integrity.merkle import (
    Levels,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    memory_range_hash,
    verify_inclusion,
)
from trailhouse.service.integrity.note import generate_signer
from trailhouse.service.integrity.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    grow_tiles,
    interior_node,
    tile_interior,
)


def test_a_tile_interior_holds_every_node_of_the_tile() -> None:
    hashes = [os.urandom(32) for _ in range(TILE_WIDTH)]
    levels = Levels(hashes).levels
    interior = tile_interior(b"".join(hashes))
    assert len(interior) == (TILE_WIDTH - 1) * 32
    for rest in range(1, TILE_HEIGHT + 1):
        for offset in range(TILE_WIDTH >> rest):
            assert interior_node(interior, rest, offset) == levels[rest][offset]


LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(3000)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=5))
def test_grow_tiles_gives_the_interior_of_each_tile_it_completes(steps: list[int]) -> None:
    tiles: dict[tuple[int, int], bytes] = {}
    interiors: dict[tuple[int, int], bytes] = {}
    size = 0
    for step in steps:
        grown = grow_tiles(size, LEAVES[size : size + step], lambda level, index: tiles.get((level, index)))
        tiles.update(grown.changed)
        assert not interiors.keys() & grown.interiors.keys()  # each tile completes once
        interiors.update(grown.interiors)
        size = grown.size
    full = {key for key, data in tiles.items() if len(data) == TILE_WIDTH * 32}
    assert interiors.keys() == full
    for key in full:
        assert interiors[key] == tile_interior(tiles[key])


def _forget_interiors(store: Any) -> None:
    """As a store written before the interiors were kept: every one NULL."""
    with store._guard():
        store._write("UPDATE log_tiles SET interior = NULL", ())


@pytest.mark.parametrize("interiors", ["stored", "level 0 hashed", "absent"])
def test_store_proofs_match_proofs_from_the_leaves(
    backend_store: Any, interiors: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if interiors != "level 0 hashed":
        monkeypatch.setattr(log, "INTERIOR_LEVEL", 0)
    signer = generate_signer("interiors")
    count = 3 * TILE_WIDTH + 77  # three full level-0 tiles, a partial one, a partial level 1
    events = [event_from_mapping(make_event(i)) for i in range(count)]
    for start in range(0, count, 200):
        backend_store.append(events[start : start + 200])
        while sequence(backend_store, signer, lambda: 0, limit=150):
            pass
    head = backend_store.log_head(account_id=A)
    assert head is not None and head.size == count
    stored = backend_store.log_proof_tiles(account_id=A, refs=[(0, i) for i in range(4)] + [(1, 0)])
    full = interiors != "level 0 hashed"
    assert [stored[(0, i)].interior is not None for i in range(4)] == [full, full, full, False]
    assert stored[(1, 0)].interior is None
    if interiors == "absent":
        _forget_interiors(backend_store)
        stored = backend_store.log_proof_tiles(account_id=A, refs=[(0, 0)])
        assert stored[(0, 0)].interior is None
    seqs = backend_store.log_leaf_seqs(account_id=A, start=0, end=count)
    bodies = backend_store.events_by_seq(account_id=A, seqs=seqs)
    leaves = [leaf_hash(bodies[s].body) for s in seqs]
    memory = memory_range_hash(leaves)
    for index in [*range(0, count, 7), count - 1, 255, 256, 511, 767, 768]:
        proof = inclusion(backend_store, A, seqs[index])
        assert proof.path == inclusion_proof(index, count, memory)
        verify_inclusion(index, count, leaves[index], proof.path, head.root)
    for old, new in [(1, count), (255, 256), (256, count), (300, 700), (513, count - 1), (768, count)]:
        assert consistency(backend_store, A, old, new) == consistency_proof(old, new, memory)


def test_a_store_from_before_interiors_gets_them_filled(
    backend_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old store's full tiles (every interior NULL) get the interiors the sequencer would have
    stored, a batch at a time, and only full tiles: the partial ones stay without."""
    monkeypatch.setattr(log, "INTERIOR_LEVEL", 0)
    signer = generate_signer("interiors")
    count = 5 * TILE_WIDTH + 9
    backend_store.append([event_from_mapping(make_event(i)) for i in range(count)])
    while sequence(backend_store, signer, lambda: 0):
        pass
    refs = [(0, i) for i in range(6)] + [(1, 0)]
    before = backend_store.log_proof_tiles(account_id=A, refs=refs)
    _forget_interiors(backend_store)
    assert fill_interiors(backend_store, limit=3) == 3
    assert fill_interiors(backend_store, limit=3) == 2  # five full tiles: done
    assert fill_interiors(backend_store, limit=3) == 0
    after = backend_store.log_proof_tiles(account_id=A, refs=refs)
    assert after == before
    assert [after[(0, i)].interior is not None for i in range(6)] == [True] * 5 + [False]
    assert after[(1, 0)].interior is None


def test_level_0_tiles_keep_no_interior(backend_store: Any) -> None:
    """Level-0 tiles (one per 256 events) are stored without an interior, and the fill leaves
    them so: a proof hashes the one it needs."""
    signer = generate_signer("interiors")
    backend_store.append([event_from_mapping(make_event(i)) for i in range(3 * TILE_WIDTH)])
    while sequence(backend_store, signer, lambda: 0):
        pass
    refs = [(0, i) for i in range(3)]
    assert all(t.interior is None for t in backend_store.log_proof_tiles(account_id=A, refs=refs).values())
    assert fill_interiors(backend_store) == 0
    assert all(t.interior is None for t in backend_store.log_proof_tiles(account_id=A, refs=refs).values())
