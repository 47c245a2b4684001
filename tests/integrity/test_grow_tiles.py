"""``grow_tiles`` (the sequencer's batch append) gives exactly the tiles of ``TileAppender`` and the
subtrees of ``Frontier`` that grow one leaf at a time, whatever the batches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.service.integrity.merkle import Frontier, ProofError, leaf_hash, root_from_leaves
from trailhouse.service.integrity.tiles import TileAppender, grow_tiles

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(70_000)]


def _one_by_one(size: int) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    frontier, appender = Frontier(), TileAppender(0, lambda level, index: None)
    for leaf in LEAVES[:size]:
        appender.append(leaf, frontier.append(leaf))
    return appender.changed, frontier.subtrees()


def _in_batches(cuts: list[int]) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    tiles: dict[tuple[int, int], bytes] = {}
    size, subtrees = 0, []
    for end in cuts:
        grown = grow_tiles(size, LEAVES[size:end], lambda level, index: tiles.get((level, index)))
        tiles.update(grown.changed)
        size, subtrees = grown.size, grown.subtrees
    return tiles, subtrees


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=6))
def test_batches_give_the_tiles_and_subtrees_of_single_appends(steps: list[int]) -> None:
    cuts, end = [], 0
    for step in steps:
        end += step
        cuts.append(end)
    tiles, subtrees = _in_batches(cuts)
    want_tiles, want_subtrees = _one_by_one(end)
    assert subtrees == want_subtrees
    assert tiles == want_tiles
    assert Frontier.resume(end, subtrees).root() == root_from_leaves(LEAVES[:end])


@pytest.mark.parametrize("cuts", [[256], [255, 256, 257], [65_535, 65_536, 65_537], [1, 70_000]])
def test_tile_and_level_boundaries(cuts: list[int]) -> None:
    tiles, subtrees = _in_batches(cuts)
    want_tiles, want_subtrees = _one_by_one(cuts[-1])
    assert (tiles, subtrees) == (want_tiles, want_subtrees)


def test_a_damaged_edge_tile_is_refused() -> None:
    grown = grow_tiles(0, LEAVES[:300], lambda level, index: None)
    damaged = {key: data[:-1] for key, data in grown.changed.items()}
    with pytest.raises(ProofError):
        grow_tiles(300, LEAVES[300:310], lambda level, index: damaged.get((level, index)))
