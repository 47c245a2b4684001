"""`trailhouse log checkpoint|proof|consistency|public-key` against a store."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.integrity.test_log_server import A, make_event
from trailhouse.cli import app
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity.checkpoint import open_checkpoint
from trailhouse.service.integrity.keys import load_log_signer
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.merkle import leaf_hash, verify_consistency, verify_inclusion
from trailhouse.service.integrity.note import Verifier


def test_log_commands(backend_store: Any, backend_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    signer = load_log_signer(None, tmp_path / "data")
    backend_store.append([event_from_mapping(make_event(i)) for i in range(30)])
    sequence(backend_store, signer, lambda: 0)
    first = backend_store.log_head(account_id=A)
    backend_store.append([event_from_mapping(make_event(i)) for i in range(30, 45)])
    sequence(backend_store, signer, lambda: 0)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, [*args, "--db", backend_url])
        assert result.exit_code == 0, result.stdout
        return result.stdout

    verifier = Verifier.parse(cli("log", "public-key").strip())
    assert verifier == signer.verifier
    checkpoint = open_checkpoint(cli("log", "checkpoint", "--account", A), [verifier])
    assert checkpoint.size == 45
    proof = json.loads(cli("log", "proof", "--account", A, f"log-{A}-7"))
    body = next(
        line
        for line in cli("log", "export", "--account", A).encode().splitlines()
        if f"log-{A}-7".encode() in line
    )
    path = [base64.b64decode(h) for h in proof["inclusionPath"]]
    verify_inclusion(proof["leafIndex"], proof["treeSize"], leaf_hash(body), path, checkpoint.root)
    consistency = json.loads(cli("log", "consistency", "--account", A, "--from", "30", "--to", "45"))
    assert first is not None
    verify_consistency(
        30, 45, first.root, checkpoint.root, [base64.b64decode(h) for h in consistency["proof"]]
    )
    result = runner.invoke(app, ["log", "proof", "--account", A, "no-such-event", "--db", backend_url])
    assert result.exit_code == 1
