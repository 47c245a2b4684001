"""C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint): origin, tree size, root hash.

The body is the text of a signed note: the origin line (the log's unique name), the tree size in
decimal, the root hash in standard base64, then optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .note import NoteError, Verifier, open_note, sign_note, strict_b64decode
from .note import Signer as NoteSigner

__all__ = ["Checkpoint", "CheckpointError", "open_checkpoint", "sign_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


class CheckpointError(ValueError):
    """A checkpoint that is malformed or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise CheckpointError("a checkpoint body ends with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("a checkpoint has an origin, a tree size and a root hash")
        origin, size, root = lines[:3]
        if not origin:
            raise CheckpointError("a checkpoint's origin is empty")
        if not _SIZE.fullmatch(size) or int(size) >= 1 << 64:
            raise CheckpointError(f"a checkpoint's tree size is not a decimal number: {size!r}")
        try:
            raw = strict_b64decode(root)
        except binascii.Error:
            raise CheckpointError("a checkpoint's root hash is not base64") from None
        if len(raw) != 32 or base64.b64encode(raw).decode() != root:
            raise CheckpointError("a checkpoint's root hash is not 32 bytes of standard base64")
        if any(not line for line in lines[3:]):
            raise CheckpointError("a checkpoint's extension line is empty")
        return cls(origin, int(size), raw, tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    return sign_note(checkpoint.body(), signer)


def open_checkpoint(note: str | bytes, verifiers: list[Verifier], *, origin: str | None = None) -> Checkpoint:
    """A checkpoint whose note verifies under one of ``verifiers`` (and names ``origin``, if given)."""
    try:
        text, _ = open_note(note, verifiers)
    except NoteError as exc:
        raise CheckpointError(str(exc)) from None
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the checkpoint is of log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
