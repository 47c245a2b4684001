"""C2SP signed notes, checkpoints and tiles."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.service.integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    sign_checkpoint,
)
from trailhouse.service.integrity.merkle import Frontier, leaf_hash, root_from_leaves
from trailhouse.service.integrity.note import (
    NoteError,
    Signer,
    Verifier,
    generate_signer,
    open_note,
    sign_note,
)
from trailhouse.service.integrity.tiles import (
    TileAppender,
    TileRef,
    entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    tile_node,
    tile_path,
    tile_width,
)

# The example key of C2SP signed-note / golang.org/x/mod/sumdb/note ("PeterNeumann").
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NOTE_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
SIGNED = (
    NOTE_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_the_published_example_key_and_note() -> None:
    signer = Signer.parse(SKEY)
    assert signer.verifier.vkey == VKEY
    assert Verifier.parse(VKEY).key_id.hex() == "c74f20a3"
    # Ed25519 is deterministic: our signature is the published one.
    assert sign_note(NOTE_TEXT, signer) == SIGNED
    text, by = open_note(SIGNED, [Verifier.parse(VKEY)])
    assert text == NOTE_TEXT and by[0].name == "PeterNeumann"


def test_unknown_keys_are_ignored_but_one_known_is_needed() -> None:
    other = generate_signer("other")
    mine = Signer.parse(SKEY)
    both = sign_note(NOTE_TEXT, other, mine)
    assert open_note(both, [mine.verifier])[0] == NOTE_TEXT
    with pytest.raises(NoteError):
        open_note(both, [generate_signer("third").verifier])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.data())
def test_every_bit_flip_of_a_signed_checkpoint_is_rejected(size: int, data: st.DataObject) -> None:
    signer = Signer.parse(SKEY)
    root = leaf_hash(size.to_bytes(4, "big"))
    note = sign_checkpoint(Checkpoint("example.org/log", size, root), signer).encode()
    assert open_checkpoint(note, [signer.verifier]).size == size
    bit = data.draw(st.integers(0, len(note) * 8 - 1))
    bad = bytearray(note)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((CheckpointError, NoteError)):
        cp = open_checkpoint(bytes(bad), [signer.verifier])
        # A flip that still parses and verifies would have to leave the checkpoint unchanged.
        assert (cp.origin, cp.size, cp.root) != ("example.org/log", size, root)
        raise AssertionError("a flipped checkpoint verified")


@pytest.mark.parametrize("size", [5, 122, 1000])
def test_every_bit_flip_is_rejected_exhaustively(size: int) -> None:
    """Every bit of a few notes: these sizes once had flips in the last base64 character of the
    signature that decoded to the same bytes (its unused low bits), and so verified."""
    signer = Signer.parse(SKEY)
    note = sign_checkpoint(Checkpoint("example.org/log", size, leaf_hash(size.to_bytes(4, "big"))), signer)
    raw = note.encode()
    accepted = []
    for bit in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[bit // 8] ^= 1 << (bit % 8)
        try:
            open_checkpoint(bytes(bad), [signer.verifier])
        except (CheckpointError, NoteError):
            continue
        accepted.append(bit)
    assert accepted == []


def test_checkpoint_body_shape() -> None:
    cp = Checkpoint("example.org/log", 3, bytes(32), ("ext line",))
    assert cp.body() == "example.org/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\next line\n"
    assert Checkpoint.parse(cp.body()) == cp
    for bad in ["x\n03\nAAAA\n", "x\n3\n", "\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"]:
        with pytest.raises(CheckpointError):
            Checkpoint.parse(bad)


def test_tile_paths() -> None:
    assert tile_path(TileRef(0, 1234067)) == "tile/0/x001/x234/067"
    assert tile_path(TileRef(1, 5, 112)) == "tile/1/005.p/112"
    assert tile_path(TileRef(None, 0, 1)) == "tile/entries/000.p/1"
    for ref in [TileRef(0, 1234067), TileRef(2, 0, 17), TileRef(None, 999, 255), TileRef(None, 1000)]:
        assert parse_tile_path(tile_path(ref).removeprefix("tile/")) == ref
    for bad in ["0/1", "0/x000/001", "0/001.p/256", "0/001.p/0", "01/001", "abc/001", "0/001/"]:
        with pytest.raises(ValueError):
            parse_tile_path(bad)


def test_tiles_of_a_70000_leaf_tree_have_the_published_widths() -> None:
    # C2SP: a 70,000-leaf tree has 273 full level-0 tiles and partial tiles of width 112, 17 and 1.
    assert tile_width(TileRef(0, 272), 70_000) == 256
    assert tile_width(TileRef(0, 273), 70_000) == 112
    assert tile_width(TileRef(1, 1), 70_000) == 17
    assert tile_width(TileRef(2, 0), 70_000) == 1


@pytest.mark.parametrize("size", [1, 255, 256, 257, 600, 65_536 + 300])
def test_appended_tiles_give_every_node(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tiles: dict[tuple[int, int], bytes] = {}
    half = size // 3
    for start, end in ((0, half), (half, size)):
        appender = TileAppender(start, lambda lv, ix: tiles.get((lv, ix)))
        frontier = Frontier.resume(start, [root_from_leaves(leaves[a:b]) for a, b in _subtrees(start)])
        for i, leaf in enumerate(leaves[start:end]):
            # Every other leaf with the frontier's tile roots, the others computing their own.
            roots = frontier.append(leaf)
            appender.append(leaf, roots if i % 2 else None)
        tiles.update(appender.changed)
    for height in range(0, size.bit_length()):
        for index in {0, (size >> height) - 1}:
            if index < 0:
                continue
            want = root_from_leaves(leaves[index << height : (index + 1) << height])
            assert tile_node(height, index, lambda lv, ix: tiles[(lv, ix)]) == want
    assert len(tiles[(0, 0)]) == min(size, 256) * 32


def _subtrees(size: int) -> list[tuple[int, int]]:
    ranges, start = [], 0
    for h in range(size.bit_length() - 1, -1, -1):
        if size >> h & 1:
            ranges.append((start, start + (1 << h)))
            start += 1 << h
    return ranges


def test_entry_bundles_round_trip() -> None:
    entries = [b"", b"a", b"x" * 65_535]
    assert list(parse_entry_bundle(entry_bundle(entries))) == entries


def test_delivered_arrays_split_byte_for_byte() -> None:
    from trailhouse.service.integrity.verify import split_events

    events = [b'{"a":"x,]}[{\\"","b":[1,{"c":2}]}', b'{"eventId":"e2","n":1e400}', b"{}"]
    assert split_events(b"[" + b",".join(events) + b"]") == events
    assert split_events(b" [\n" + b" ,\n".join(events) + b"\n] ") == events
    assert split_events(b"\n".join(events) + b"\n") == events
    assert split_events(b"[]") == []
    with pytest.raises(ValueError):
        split_events(b'[{"a":1}')


def test_events_newer_than_the_mirror_are_unverified_not_inserted() -> None:
    from trailhouse.service.integrity.log import log_origin
    from trailhouse.service.integrity.merkle import root_from_leaves
    from trailhouse.service.integrity.verify import verify_log

    signer = generate_signer("t")
    events = [b'{"eventId":"e%d"}' % i for i in range(10)]
    note = sign_checkpoint(
        Checkpoint(log_origin(signer, "1"), 8, root_from_leaves([leaf_hash(e) for e in events[:8]])), signer
    )
    report = verify_log(
        verifiers=[signer.verifier], checkpoints=[("cp", note.encode())], events=events, reference=events[:8]
    )
    assert report.ok and report.unverified == 2 and report.verified_size == 8
    # Out of order, an event the reference lacks cannot be told from an inserted one.
    shuffled = [events[9], *events[:8]]
    report = verify_log(
        verifiers=[signer.verifier], checkpoints=[("cp", note.encode())], events=shuffled,
        reference=events[:8], in_log_order=False,
    )  # fmt: skip
    assert set(report.counts) == {"inserted"}
