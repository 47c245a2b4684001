"""Commands that only read refuse a store that is not there, and say why they found nothing."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import pg_schema_url
from trailhouse.cli import app

runner = CliRunner()

READS = [
    ["lookup", "--account", "1111"],
    ["access-key", "report", "LTAI5tNobody", "--account", "1111"],
    ["keys", "list"],
    ["keys", "disable", "LTAI5tNobody"],
    ["tokens", "list"],
    ["tokens", "delete", "tok-x"],
    ["maintain"],
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRAILHOUSE_DB", raising=False)
    return tmp_path


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) for a in READS])
def test_a_read_on_a_missing_sqlite_store_fails_and_creates_nothing(env: Path, args: list[str]) -> None:
    db_file = env / "typo.db"
    result = runner.invoke(app, [*args, "--db", f"sqlite:///{db_file}"])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (
        f"error: no store at sqlite:///{db_file}: nothing has been ingested there; "
        "check --db or TRAILHOUSE_DB"
    )
    assert not db_file.exists() and not Path(f"{db_file}-wal").exists()


def test_copy_from_a_missing_store_creates_neither(env: Path) -> None:
    src, dst = env / "missing.db", env / "target.db"
    result = runner.invoke(app, ["copy", "--from", f"sqlite:///{src}", "--to", f"sqlite:///{dst}"])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not src.exists() and not dst.exists()


def test_commands_that_write_still_create_the_store(env: Path) -> None:
    db_file = env / "new.db"
    result = runner.invoke(app, ["keys", "create", "--account", "1111", "--db", f"sqlite:///{db_file}"])
    assert result.exit_code == 0, result.output
    assert db_file.exists()
    assert runner.invoke(app, ["keys", "list", "--db", f"sqlite:///{db_file}"]).exit_code == 0


@pytest.mark.postgres
def test_a_read_on_an_empty_postgres_schema_fails(env: Path, pg_available: str) -> None:
    import psycopg

    with pg_schema_url(pg_available) as url:
        result = runner.invoke(app, ["tokens", "list", "--db", url])
        assert result.exit_code == 1 and "no store at postgresql://" in result.output, result.output
        with psycopg.connect(url) as conn:  # nothing was migrated into the schema
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchone()
        assert tables == (0,)


def _event(i: int, account: str, key: str, when: str) -> bytes:
    return orjson.dumps(
        {
            "eventId": f"r-{i}",
            "eventTime": when,
            "eventName": "ListBuckets",
            "serviceName": "Oss",
            "sourceIpAddress": "192.0.2.7",
            "userIdentity": {"accountId": account, "type": "ram-user", "userName": "bob", "accessKeyId": key},
        }
    )


@pytest.fixture
def filled(env: Path) -> str:
    db = f"sqlite:///{env / 'filled.db'}"
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    (env / "e.ndjson").write_bytes(b"\n".join(_event(i, "1111", "LTAI5tUsed", recent) for i in range(3)))
    assert runner.invoke(app, ["ingest", "--db", db, str(env / "e.ndjson")]).exit_code == 0
    return db


def test_report_of_a_key_with_no_calls_says_so_and_exits_4(filled: str) -> None:
    used = runner.invoke(app, ["access-key", "report", "LTAI5tUsed", "--account", "1111", "--db", filled])
    assert used.exit_code == 0, used.output
    unknown = runner.invoke(app, ["access-key", "report", "LTAI5tTypo", "--account", "1111", "--db", filled])
    assert unknown.exit_code == 4
    assert "AccessKey LTAI5tTypo made no calls in account 1111 since" in unknown.output
    assert "First use" not in unknown.output
    empty_account = runner.invoke(
        app, ["access-key", "report", "LTAI5tUsed", "--account", "2222", "--db", filled, "--format", "json"]
    )
    assert empty_account.exit_code == 4
    assert "account 2222 has no events in sqlite:///" in empty_account.output


def test_lookup_says_why_it_found_nothing_on_stderr(filled: str) -> None:
    import subprocess
    import sys

    def lookup(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trailhouse", "lookup", "--db", filled, "--format", "ndjson", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    found = lookup("--account", "1111")
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3 and found.stderr == ""
    other = lookup("--account", "2222")
    assert other.returncode == 0 and other.stdout == ""
    assert "account 2222 has no events in sqlite:///" in other.stderr
    old = lookup("--account", "1111", "--start", "2001-01-01T00:00:00Z", "--end", "2001-02-01T00:00:00Z")
    assert old.stdout == "" and "before the retention of 400 days" in old.stderr
    nothing = lookup("--account", "1111", "EventName=DeleteBucket")
    assert nothing.stdout == "" and "no events match" in nothing.stderr
