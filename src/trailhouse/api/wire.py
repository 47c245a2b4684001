"""What the two wires (``api/rpc`` at ``/``, ``api/native`` under ``/api/v1``) both do the same way.

Request ids, the status logged for a client that left, the choice of an output format and the
reading of plain parameter values. Each wire keeps its own error classes and messages (their
shapes differ on the wire); these helpers only decide, and the caller raises its own error.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

__all__ = [
    "CLIENT_GONE",
    "REQUEST_ID_HEADER",
    "one_of",
    "has_nul",
    "new_request_id",
    "plain_bool",
    "plain_int",
]

#: Both wires answer the request id in this header (the name ActionTrail uses).
REQUEST_ID_HEADER = "x-acs-request-id"

#: The status logged for a client that left before its answer (nginx's "client closed request");
#: the answer itself is never read.
CLIENT_GONE = 499


def new_request_id() -> str:
    """An upper-case UUID4, the shape of real RequestIds (``6A6711BD-F18E-445C-9B6F-E7F9F6EEE9E0``)."""
    return str(uuid.uuid4()).upper()


def one_of(raw: str, choices: Collection[str]) -> str | None:
    """The one of ``choices`` (lower-case names: formats, orders) that ``raw`` names, case aside.

    None when it names none of them, or when ``raw`` is not ASCII: no non-ASCII spelling is meant.
    """
    folded = raw.lower()
    return folded if raw.isascii() and folded in choices else None


def plain_int(raw: str, *, max_digits: int | None = None) -> int | None:
    """``raw`` as a non-negative integer if it is ASCII decimal digits only, else None.

    ``isdigit()`` alone accepts "²" (int() then fails) and "١٢" (int() reads 12), and int() itself
    takes " 7" and "+7": none of them is a number a client meant to send.
    """
    if not (raw.isascii() and raw.isdigit()):
        return None
    if max_digits is not None and len(raw) > max_digits:
        return None
    return int(raw)


def plain_bool(raw: str) -> bool | None:
    """``true`` or ``false`` in any case; None for anything else."""
    folded = raw.lower()
    if folded == "true":
        return True
    if folded == "false":
        return False
    return None


def has_nul(text: str) -> bool:
    # PostgreSQL text cannot hold NUL, and no stored value contains one.
    return "\x00" in text
