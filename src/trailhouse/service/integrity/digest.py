"""Digests: what a trail delivers beside each window's files so that a copy outside Trailhouse pins
the log (``<prefix>/AliyunLogs/Actiontrail-Digest/<region>/YYYY/MM/DD/…_Digest_….json.gz``).

A digest carries the account's signed checkpoint at the window's end, the files of the window
with their SHA-256 and the leaf index of each of their events, the hashes of every leaf the window
added (all of the account's events, also those the trail's EventRW filter did not deliver: a hash
reveals nothing of them), the full-subtree roots of the tree as the previous digest left it, and
the consistency proof from that tree. So a verifier holding only the digests and the files checks:
the chain (each digest extends the previous one), each file (present, unchanged) and each event
(its leaf is where the digest says, under a signed root).

The delivery engine calls ``build_digest`` after writing a window's files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ...storage.base import MerkleLogStore
from .checkpoint import Checkpoint, CheckpointError, open_checkpoint, sign_checkpoint
from .log import _Tiles, log_origin
from .merkle import EMPTY_ROOT, Frontier, ProofError, leaf_hash, verify_consistency
from .note import Signer, Verifier
from .tiles import tile_node

__all__ = ["DeliveredFile", "build_digest", "check_digests"]


@dataclass(frozen=True, slots=True)
class DeliveredFile:
    """A file the trail wrote in the window: its object path and the events it holds (stored bodies)."""

    path: str
    content: bytes
    events: Sequence[bytes]


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def build_digest(
    store: MerkleLogStore,
    *,
    account_id: str,
    files: Sequence[DeliveredFile],
    window_start: str,
    window_end: str,
    previous: dict[str, Any] | None,
    tree_size: int | None = None,
    signer: Signer | None = None,
) -> dict[str, Any]:
    """The digest of one delivery window of one account's trail (gzip it with ``digest_bytes``).

    ``previous`` is the last digest this trail delivered (its parsed JSON), None for the first.
    The window covers the log from the previous digest's tree size to the latest checkpoint, or
    to ``tree_size`` when given: then ``signer`` signs a checkpoint of that tree (Ed25519 is
    deterministic, so the same window always gives the same digest, however far the log has grown).
    """
    head = store.log_head(account_id=account_id)
    if head is None:
        raise ValueError(f"account {account_id} has no log yet")
    old = int(previous["treeSize"]) if previous else 0
    tiles = _Tiles(store, account_id, head)
    size, note = head.size, head.checkpoint
    if tree_size is not None:
        if signer is None:
            raise ValueError("a digest pinned to a tree size needs the log's signer")
        if not old <= tree_size <= head.size:
            raise ValueError(f"tree size {tree_size} is not between {old} and the log's {head.size}")
        size = tree_size
        root = tiles.range_hash(0, size) if size else EMPTY_ROOT
        note = sign_checkpoint(Checkpoint(log_origin(signer, account_id), size, root), signer)
    leaves = [tile_node(0, i, tiles.tile) for i in range(old, size)]
    heights = [h for h in range(old.bit_length() - 1, -1, -1) if old >> h & 1]
    frontier, start = [], 0
    for h in heights:  # the full subtrees of the old tree, left to right
        frontier.append(tile_node(h, start >> h, tiles.tile))
        start += 1 << h
    from .log import consistency

    proof = consistency(store, account_id, old, size) if old else []
    index_of = {leaf: old + i for i, leaf in enumerate(leaves)}
    return {
        "digestVersion": 1,
        "accountId": account_id,
        "digestStartTime": window_start,
        "digestEndTime": window_end,
        "checkpoint": note,
        "previousTreeSize": old,
        "treeSize": size,
        "previousFrontier": [_b64(h) for h in frontier],
        "leafHashes": [_b64(h) for h in leaves],
        "consistencyProof": [_b64(h) for h in proof],
        "previousDigestSha256": hashlib.sha256(digest_bytes(previous)).hexdigest() if previous else None,
        "logFiles": [
            {
                "path": f.path,
                "sha256": hashlib.sha256(f.content).hexdigest(),
                "leafIndexes": [index_of.get(leaf_hash(e), -1) for e in f.events],
            }
            for f in files
        ],
    }


def digest_bytes(digest: dict[str, Any]) -> bytes:
    """The digest as delivered: gzip of its JSON (``mtime=0``, so the same digest gives the same bytes)."""
    return gzip.compress(orjson.dumps(digest, option=orjson.OPT_SORT_KEYS), mtime=0)


def check_digests(
    digests: Sequence[dict[str, Any]], files: dict[str, bytes], verifiers: list[Verifier], events_of: Any
) -> list[tuple[str, str]]:
    """(kind, message) for everything wrong with a chain of digests and the files they list.

    ``files`` maps a listed path to the bytes found (absent: missing); ``events_of(bytes)`` gives a
    file's events (stored bodies)."""
    problems: list[tuple[str, str]] = []
    previous_root: bytes | None = None
    previous_size = 0
    for digest in sorted(digests, key=lambda d: int(d["treeSize"])):
        try:
            cp = open_checkpoint(digest["checkpoint"], verifiers)
        except CheckpointError as exc:
            problems.append(("checkpoint-invalid", f"digest ending {digest['digestEndTime']}: {exc}"))
            continue
        old = int(digest["previousTreeSize"])
        if old != previous_size:
            problems.append(
                ("digest-missing", f"a digest ends at {previous_size} leaves, the next starts at {old}")
            )
        try:
            frontier = Frontier.resume(old, [base64.b64decode(h) for h in digest["previousFrontier"]])
            if previous_root is not None and old == previous_size and frontier.root() != previous_root:
                raise ProofError("its starting tree is not the previous digest's")
            if previous_root is not None and old == previous_size:
                proof = [base64.b64decode(h) for h in digest["consistencyProof"]]
                verify_consistency(old, cp.size, previous_root, cp.root, proof)
            leaves = [base64.b64decode(h) for h in digest["leafHashes"]]
            frontier.extend(leaves)
            if cp.size != frontier.size or frontier.root() != cp.root:
                raise ProofError("its leaves do not rebuild its signed root")
        except ProofError as exc:
            problems.append(("forked", f"digest ending {digest['digestEndTime']}: {exc}"))
            continue
        for listed in digest["logFiles"]:
            content = files.get(listed["path"])
            if content is None:
                problems.append(("file-missing", f"{listed['path']} is listed in a digest but absent"))
                continue
            if hashlib.sha256(content).hexdigest() != listed["sha256"]:
                problems.append(("file-altered", f"{listed['path']} differs from its digest's SHA-256"))
                continue
            for event, index in zip(events_of(content), listed["leafIndexes"], strict=False):
                if not old <= index < cp.size or leaves[index - old] != leaf_hash(event):
                    problems.append(
                        ("altered", f"an event of {listed['path']} is not leaf {index} of the log")
                    )
        previous_root, previous_size = cp.root, cp.size
    return problems
