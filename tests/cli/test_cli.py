"""The trailhouse command: ingest from files of every format, credentials, lookup, migrate."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from trailhouse.cli import app
from trailhouse.model.credentials import KeyStatus
from trailhouse.model.query import EventFilter
from trailhouse.storage import open_store

runner = CliRunner()


def event(i: int, account: str = "1111") -> dict[str, object]:
    return {
        "eventId": f"f-{i}",
        "eventTime": f"2026-11-0{1 + i % 9}T08:00:00Z",
        "eventName": "ListBuckets",
        "serviceName": "Oss",
        "sourceIpAddress": f"192.0.2.{i % 200}",
        "userIdentity": {
            "accountId": account,
            "type": "ram-user",
            "userName": "bob",
            "accessKeyId": "LTAI5tCli",
        },
    }


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    return f"sqlite:///{tmp_path / 'cli.db'}"


def stored(db: str, account: str = "1111") -> list[str]:
    store = open_store(db)
    try:
        found = store.find_events(
            account_id=account, flt=EventFilter(0, 2**62), after=None, descending=False, limit=100_000
        )
        return sorted(e.event_id for e in found)
    finally:
        store.close()


def invoke(*args: str, input: bytes | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.output


def test_ingest_every_file_format(tmp_path: Path, db: str) -> None:
    (tmp_path / "a.ndjson").write_bytes(b"\n".join(orjson.dumps(event(i)) for i in range(0, 10)))
    (tmp_path / "b.json").write_bytes(orjson.dumps([event(i) for i in range(10, 20)]))
    (tmp_path / "c.json").write_bytes(orjson.dumps({"events": [event(i) for i in range(20, 30)]}))
    (tmp_path / "d.json.gz").write_bytes(gzip.compress(orjson.dumps([event(i) for i in range(30, 40)])))
    (tmp_path / "e.ndjson.gz").write_bytes(
        gzip.compress(b"\n".join(orjson.dumps(event(i)) for i in range(40, 50)))
    )
    (tmp_path / "f.json").write_text(json.dumps(event(50), indent=2))  # one pretty-printed event
    files = [
        str(tmp_path / n) for n in ("a.ndjson", "b.json", "c.json", "d.json.gz", "e.ndjson.gz", "f.json")
    ]
    code, output = invoke("ingest", "--db", db, "--json", *files)
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (51, 0, 0)
    assert stored(db) == sorted(f"f-{i}" for i in range(51))
    code, output = invoke("ingest", "--db", db, "--json", *files)
    assert json.loads(output.strip().splitlines()[-1])["duplicates"] == 51


def test_ingest_from_stdin(db: str) -> None:
    data = b"\n".join(orjson.dumps(event(i)) for i in range(5))
    code, output = invoke("ingest", "--db", db, "--json", "-", input=data)
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["accepted"] == 5


def test_unreadable_input_exits_non_zero(tmp_path: Path, db: str) -> None:
    # Paths longer than a terminal line: the messages name them whole, never broken across lines.
    tmp_path = tmp_path / ("a-directory-with-a-long-name-" * 3)
    tmp_path.mkdir()
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (tmp_path / "bad.json").write_bytes(b'[{"eventId": ')
    (tmp_path / "ok.json").write_bytes(orjson.dumps([event(1)]))
    code, output = invoke(
        "ingest",
        "--db",
        db,
        str(tmp_path / "bad.gz"),
        str(tmp_path / "bad.json"),
        str(tmp_path / "ok.json"),
        str(tmp_path / "missing.json"),
    )
    assert code == 2
    assert "cannot read" in output
    assert str(tmp_path / "bad.gz") in output and str(tmp_path / "missing.json") in output
    assert stored(db) == ["f-1"]  # the readable file still went in


def test_rejected_events_are_reported(tmp_path: Path, db: str) -> None:
    bad = event(2)
    del bad["eventTime"]
    (tmp_path / "x.ndjson").write_bytes(orjson.dumps(event(1)) + b"\n" + orjson.dumps(bad) + b"\n{oops\n")
    code, output = invoke("ingest", "--db", db, str(tmp_path / "x.ndjson"))
    assert code == 3
    assert "missing required field eventTime" in output and "line 3" in output


def test_keys_lifecycle(db: str) -> None:
    code, output = invoke("keys", "create", "--account", "1111", "--user", "alice", "--json", "--db", db)
    assert code == 0, output
    created = json.loads(output)
    assert created["accessKeyId"].startswith("LTAI") and len(created["accessKeyId"]) == 24
    assert len(created["accessKeySecret"]) == 30 and created["accountId"] == "1111"
    code, listing = invoke("keys", "list", "--json", "--db", db)
    assert created["accessKeyId"] in listing and created["accessKeySecret"] not in listing
    assert invoke("keys", "disable", created["accessKeyId"], "--db", db)[0] == 0
    store = open_store(db)
    key = store.get_access_key(created["accessKeyId"])
    assert key is not None and key.status is KeyStatus.INACTIVE
    assert created["accessKeySecret"].encode() not in key.secret_sealed  # sealed at rest
    store.close()
    assert invoke("keys", "delete", created["accessKeyId"], "--db", db)[0] == 0
    assert invoke("keys", "delete", created["accessKeyId"], "--db", db)[0] == 1
    code, output = invoke("keys", "create", "--account", "1111", "--allow", "actiontrail:Nope", "--db", db)
    assert code == 2 and "unknown action" in output


def test_master_key_file_is_private(tmp_path: Path, db: str) -> None:
    invoke("keys", "create", "--account", "1111", "--db", db)
    key_file = tmp_path / "data" / "master.key"
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600


def test_tokens(db: str) -> None:
    code, output = invoke("tokens", "create", "--account", "1", "--account", "2", "--json", "--db", db)
    assert code == 0, output
    token = json.loads(output)["token"]
    code, listing = invoke("tokens", "list", "--json", "--db", db)
    assert token not in listing and json.loads(listing)[0]["accounts"] == ["1", "2"]
    assert invoke("tokens", "create", "--all-accounts", "--scope", "read", "--db", db)[0] == 0
    assert invoke("tokens", "create", "--db", db)[0] == 1  # neither accounts nor all accounts


def test_lookup(tmp_path: Path, db: str) -> None:
    (tmp_path / "a.json").write_bytes(orjson.dumps([event(i) for i in range(30)]))
    invoke("ingest", "--db", db, str(tmp_path / "a.json"))
    code, output = invoke(
        "lookup",
        "--account",
        "1111",
        "--db",
        db,
        "--format",
        "ndjson",
        "SourceIpAddress=192.0.2.0/29",
        "--start",
        "2026-10-01T00:00:00Z",
    )
    assert code == 0, output
    ids = sorted(json.loads(line)["eventId"] for line in output.splitlines())
    assert ids == sorted(f"f-{i}" for i in range(30) if i % 200 < 8)
    code, output = invoke(
        "lookup",
        "--account",
        "1111",
        "--db",
        db,
        "--format",
        "csv",
        "--limit",
        "3",
        "--start",
        "2026-10-01T00:00:00Z",
        "EventName.prefix=List",
    )
    lines = output.splitlines()  # the runner mixes stderr in: the note that the limit cut the list
    assert lines[0].startswith("eventTime,eventId") and len(lines) == 5
    assert lines[4] == "showing the first 3 events (newest first); --limit N or --all for more"
    assert invoke("lookup", "--account", "1111", "--db", db, "Bogus=1")[0] == 2


def test_command_runs_as_a_process(tmp_path: Path, db: str) -> None:
    data = b"\n".join(orjson.dumps(event(i)) for i in range(3))
    proc = subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", "ingest", "--db", db, "--json", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accepted"] == 3
