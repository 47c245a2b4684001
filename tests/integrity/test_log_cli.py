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


def test_verify_and_watch_keep_stdout_for_the_answer(tmp_path: Path) -> None:
    """A finding is printed as it is (a bracketed name is not eaten as markup); with --json stdout
    holds one JSON document; a log that cannot be reached is said on stderr, not among the alarms."""
    from tests.cli._proc import clean_env, run

    env = clean_env(tmp_path, TRAILHOUSE_DATA_DIR=str(tmp_path / "data"))
    vkey = load_log_signer(None, tmp_path / "data").verifier.vkey
    (tmp_path / "cps").mkdir()
    bad = tmp_path / "cps" / "[bold]forged.note"
    bad.write_text("not a signed note\n")
    (tmp_path / "events.ndjson").write_text("")
    args = ("verify", "--key", vkey, "--checkpoints", str(tmp_path / "cps"), "--events")
    text = run(*args, str(tmp_path / "events.ndjson"), env=env)
    assert text.returncode == 1 and f"CHECKPOINT-INVALID: {bad}:" in text.stdout, text.stdout
    as_json = run(*args, str(tmp_path / "events.ndjson"), "--json", env=env)
    report = json.loads(as_json.stdout)
    assert "checkpoint-invalid" in report["problems"]
    assert any(str(bad) in finding["message"] for finding in report["findings"])
    assert {"verifiedSize", "findings"} <= set(report)
    watched = run(
        "verify", "--key", vkey, "--watch", "http://127.0.0.1:9", "--state", str(tmp_path / "state"),
        "--token", "t", "--once", "--json", env=env,
    )  # fmt: skip
    assert watched.returncode == 3 and watched.stdout == "" and "cannot reach the log" in watched.stderr
