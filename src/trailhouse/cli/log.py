"""``trailhouse log``: the Merkle log of an account, read from the store (see docs/integrity.md)."""

from __future__ import annotations

import base64
import sys
from typing import Annotated

import typer

from ..service.integrity.keys import LogKeyError, LogKeyMissing, load_log_signer
from ..service.integrity.log import (
    LogNotFound,
    checkpoint_note,
    consistency,
    find_event_seq,
    inclusion,
)
from ..service.integrity.note import Signer
from ..settings import Settings
from .common import DbOption, fail, load_settings, opened, write_json

__all__ = ["log_checkpoint", "log_consistency", "log_export", "log_proof", "log_public_key"]

AccountOption = Annotated[str, typer.Option("--account", help="The account whose log to read.")]


def _signer(settings: Settings) -> Signer:
    # Never a new key here: `log public-key` would print a key nothing was signed with.
    try:
        return load_log_signer(settings.log_key, settings.resolved_data_dir(), create=False)
    except LogKeyMissing as exc:
        raise fail(
            f"{exc}: run this with the data directory of the server that signs the log "
            "(TRAILHOUSE_DATA_DIR), or set TRAILHOUSE_LOG_KEY to its key"
        ) from None
    except LogKeyError as exc:
        raise fail(str(exc)) from None


def log_public_key(db: DbOption = None) -> None:
    """Print the verifier key of the log's checkpoints (C2SP vkey: <name>+<key id>+<key>)."""
    settings = load_settings(db)
    sys.stdout.write(_signer(settings).verifier.vkey + "\n")


def log_checkpoint(account: AccountOption, db: DbOption = None) -> None:
    """Print the account's latest signed checkpoint (a C2SP signed note)."""
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        sys.stdout.write(checkpoint_note(store, _signer(settings), account))


def log_proof(
    account: AccountOption,
    event_id: Annotated[str, typer.Argument(help="The eventId to prove.")],
    db: DbOption = None,
) -> None:
    """Print, as JSON, the proof that an event is in the account's latest checkpoint."""
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        seq = find_event_seq(store, account, event_id)
        if seq is None:
            raise fail(f"the account has no event {event_id!r}")
        try:
            proof = inclusion(store, account, seq)
        except LogNotFound as exc:
            raise fail(str(exc)) from None
    body = {
        "eventId": event_id,
        "leafIndex": proof.leaf_index,
        "treeSize": proof.tree_size,
        "inclusionPath": [base64.b64encode(h).decode() for h in proof.path],
        "checkpoint": proof.checkpoint,
    }
    write_json(body)


def log_consistency(
    account: AccountOption,
    old: Annotated[int, typer.Option("--from", help="The older tree size.")],
    new: Annotated[int, typer.Option("--to", help="The newer tree size.")],
    db: DbOption = None,
) -> None:
    """Print, as JSON, the proof that the log at --from is a prefix of the log at --to."""
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        try:
            proof = consistency(store, account, old, new)
        except LogNotFound as exc:
            raise fail(str(exc)) from None
    write_json({"from": old, "to": new, "proof": [base64.b64encode(h).decode() for h in proof]})


def log_export(account: AccountOption, db: DbOption = None) -> None:
    """Write the account's logged events in log order as NDJSON (the input of `trailhouse verify`)."""
    settings = load_settings(db)
    with opened(settings, create=False) as store:
        head = store.log_head(account_id=account)
        size = head.size if head else 0
        for start in range(0, size, 1000):
            seqs = store.log_leaf_seqs(account_id=account, start=start, end=min(size, start + 1000))
            bodies = store.events_by_seq(account_id=account, seqs=seqs)
            sys.stdout.buffer.write(b"".join(bodies[s].body + b"\n" for s in seqs if s in bodies))
        sys.stdout.flush()
