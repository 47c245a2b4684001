"""``trailhouse verify --watch``: follow a live log as a mirror and alarm on a fork or a rollback.

The state folder keeps every checkpoint seen (``checkpoints/<size>.note``), the log's entries in
log order (``entries.ndjson``, the ``--reference`` of an offline verify) and the frontier they
rebuild (``state.json``). Each look fetches the checkpoint, the new entries (tlog-tiles entry
bundles) and the server's consistency proof, and checks both against what was seen before.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson

from ..service.integrity.checkpoint import CheckpointError, open_checkpoint
from ..service.integrity.merkle import Frontier, ProofError, leaf_hash, verify_consistency
from ..service.integrity.note import Verifier
from ..service.integrity.tiles import TILE_WIDTH, TileRef, parse_entry_bundle, tile_path
from .common import note, out, write_json

__all__ = ["watch_log"]

EXIT_OK, EXIT_ALARM, EXIT_UNREACHABLE = 0, 1, 3


class _Client:
    def __init__(self, url: str, token: str, account: str | None) -> None:
        self.base = url.rstrip("/") + "/api/v1/log"
        self.token, self.account = token, account

    def get(self, path: str, **params: object) -> bytes:
        query = {k: str(v) for k, v in params.items()}
        if self.account:
            query["account"] = self.account
        url = f"{self.base}/{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the operator's URL)
            return bytes(response.read())


def _alarm(kind: str, message: str, as_json: bool, **detail: object) -> int:
    line = {"alarm": kind, "message": message, **detail}
    if as_json:
        write_json(line)
    else:
        out.print(f"ALARM {kind.upper()}: {message}", markup=False)
    return EXIT_ALARM


def _look(client: _Client, state: Path, verifiers: list[Verifier], as_json: bool) -> int:
    (state / "checkpoints").mkdir(parents=True, exist_ok=True)
    note = client.get("checkpoint")
    try:
        new = open_checkpoint(note, verifiers)
    except CheckpointError as exc:
        return _alarm("checkpoint-invalid", str(exc), as_json)
    saved = state / "state.json"
    seen = orjson.loads(saved.read_bytes()) if saved.exists() else None
    old_size = seen["size"] if seen else 0
    if seen and seen["origin"] != new.origin:
        return _alarm("forked", f"the log is now {new.origin!r}, it was {seen['origin']!r}", as_json)
    if new.size < old_size:
        (state / "checkpoints" / f"{new.size:012d}-rollback.note").write_bytes(note)
        return _alarm(
            "rollback",
            f"the log went back from {old_size} to {new.size} leaves",
            as_json,
            seen=old_size,
            now=new.size,
        )
    old_root = base64.b64decode(seen["root"]) if seen else b""
    if seen and new.size == old_size and new.root != old_root:
        (state / "checkpoints" / f"{new.size:012d}-fork.note").write_bytes(note)
        return _alarm("forked", f"two signed roots at size {new.size}", as_json, size=new.size)
    if new.size > old_size and old_size:
        proof = orjson.loads(client.get("consistency", **{"from": old_size, "to": new.size}))
        try:
            verify_consistency(
                old_size, new.size, old_root, new.root, [base64.b64decode(h) for h in proof["proof"]]
            )
        except ProofError as exc:
            (state / "checkpoints" / f"{new.size:012d}-fork.note").write_bytes(note)
            return _alarm(
                "forked",
                f"the log at {new.size} does not extend the one seen at {old_size}: {exc}",
                as_json,
                seen=old_size,
                now=new.size,
            )
    frontier = (
        Frontier.resume(old_size, [base64.b64decode(h) for h in seen["frontier"]]) if seen else Frontier()
    )
    fetched: list[bytes] = []
    for bundle in range(old_size // TILE_WIDTH, -(-new.size // TILE_WIDTH)):
        width = min(TILE_WIDTH, new.size - bundle * TILE_WIDTH)
        data = client.get(tile_path(TileRef(None, bundle, width)))
        entries = list(parse_entry_bundle(data))[max(0, old_size - bundle * TILE_WIDTH) :]
        fetched += entries
    for entry in fetched:
        frontier.append(leaf_hash(entry))
    if frontier.root() != new.root:
        return _alarm("mismatch", "the served entries do not rebuild the signed root", as_json, size=new.size)
    with open(state / "entries.ndjson", "ab") as fh:
        fh.write(b"".join(e + b"\n" for e in fetched))
    (state / "checkpoints" / f"{new.size:012d}.note").write_bytes(note)
    saved.write_bytes(
        orjson.dumps(
            {
                "origin": new.origin,
                "size": new.size,
                "root": base64.b64encode(new.root).decode(),
                "frontier": [base64.b64encode(h).decode() for h in frontier.subtrees()],
            }
        )
    )
    return EXIT_OK


def watch_log(
    url: str,
    state: Path,
    token: str,
    account: str | None,
    verifiers: list[Verifier],
    *,
    once: bool,
    interval: float,
    as_json: bool,
) -> int:
    client = _Client(url, token, account)
    while True:
        try:
            code = _look(client, state, verifiers, as_json)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # stderr, as every note: with --json, stdout holds alarm lines only.
            note(f"cannot reach the log: {exc}")
            code = EXIT_UNREACHABLE
            if not once:
                time.sleep(interval)
                continue
        if code != EXIT_OK or once:
            return code
        time.sleep(interval)
