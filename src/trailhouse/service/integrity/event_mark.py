"""One event's integrity mark: is this stored body the one the account's signed log holds?

The check is the one an outside verifier makes, done by the server for a person looking at an
event: the inclusion proof of the event's leaf in the latest checkpoint, the checkpoint's
Ed25519 signature checked with the log's public key, and the proof checked (RFC 6962/9162)
from ``leaf_hash(body)`` to the signed root. The body is the stored one, so an event row edited
behind the server's back fails here even though the proof itself (read from the hash tiles) is
intact.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ...storage.base import MerkleLogStore
from .checkpoint import CheckpointError, open_checkpoint
from .log import InclusionProof, LogNotFound, inclusion, log_origin
from .merkle import ProofError, leaf_hash, verify_inclusion
from .note import Signer

__all__ = ["EventMark", "MarkState", "check_event"]


class MarkState(enum.StrEnum):
    CHECKED = "checked"  # the proof leads from the stored body to a root whose signature verifies
    PENDING = "pending"  # not sequenced into the log yet (the sequencer runs about every second)
    FAILED = "failed"  # a signature, a proof or the stored body does not check out
    NO_LOG = "no-log"  # this server keeps no Merkle log


@dataclass(frozen=True, slots=True)
class EventMark:
    state: MarkState
    #: What a person reads next to the mark: what was checked, or what failed.
    message: str
    #: The checkpoint the proof was checked against (0 when there was none to check).
    tree_size: int = 0
    proof: InclusionProof | None = None


def _sequenced(store: MerkleLogStore, account_id: str, seq: int) -> bool:
    head = store.log_head(account_id=account_id)
    index = store.log_leaf_index(account_id=account_id, seq=seq)
    return head is not None and index is not None and index < head.size


def check_event(
    store: MerkleLogStore, signer: Signer | None, *, account_id: str, seq: int, body: bytes
) -> EventMark:
    """The mark of event ``seq`` (whose stored body is ``body``) against the latest checkpoint."""
    if signer is None:
        return EventMark(MarkState.NO_LOG, "This server keeps no Merkle log.")
    try:
        proof = inclusion(store, account_id, seq)
    except (LogNotFound, ProofError) as exc:
        if not _sequenced(store, account_id, seq):
            return EventMark(
                MarkState.PENDING, "Not yet sequenced: events join the log within about a second."
            )
        return EventMark(MarkState.FAILED, f"The log cannot prove this event: {exc}.")
    try:
        checkpoint = open_checkpoint(
            proof.checkpoint, [signer.verifier], origin=log_origin(signer, account_id)
        )
    except CheckpointError as exc:
        return EventMark(
            MarkState.FAILED, f"The latest checkpoint does not verify with the log's key: {exc}.", proof=proof
        )
    if checkpoint.size != proof.tree_size:
        return EventMark(
            MarkState.FAILED,
            f"The proof is for a tree of {proof.tree_size} leaves, the checkpoint for {checkpoint.size}.",
            checkpoint.size,
            proof,
        )
    try:
        verify_inclusion(proof.leaf_index, proof.tree_size, leaf_hash(body), proof.path, checkpoint.root)
    except ProofError as exc:
        return EventMark(
            MarkState.FAILED,
            f"The stored event does not match the logged one ({exc}): it was changed after it was logged.",
            checkpoint.size,
            proof,
        )
    return EventMark(
        MarkState.CHECKED,
        f"In the log, proof checked against checkpoint of size {checkpoint.size}.",
        checkpoint.size,
        proof,
    )
