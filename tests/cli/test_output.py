"""The CLI as a reader meets it, through real processes: piped at 80 columns it writes whole values
as tab-separated text; on an 80-column terminal (a real pty) its tables never cut an id or a time;
``lookup`` prints its first rows while it is still reading; dates are accepted as ``YYYY-MM-DD``;
``--format`` lists its choices; every JSON output names its keys in camelCase."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import orjson
import pytest

from tests.cli._proc import clean_env, run
from trailhouse import package_version

ACCOUNT = "1234567890123456"
KEY = "LTAI5tOutputTestKey00001"
LONG_USER = "k8s-node-role:i-bp15zf0o7khy7cauiph0-with-a-long-session-name"


def _event(i: int, when: str, **extra: object) -> dict[str, object]:
    return {
        "eventId": f"7D3C6A1E-0000-4000-8000-{i:012d}",
        "eventTime": when,
        "eventName": "DescribeInstanceAttribute" if i % 2 else "GetSecretValue",
        "serviceName": "Ecs",
        "sourceIpAddress": f"203.0.113.{i % 250}",
        "userIdentity": {
            "accountId": ACCOUNT,
            "userName": LONG_USER if i % 3 == 0 else "ci",
            "accessKeyId": KEY,
        },
        **extra,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("out")
    environment = clean_env(home, TRAILHOUSE_DB=f"sqlite:///{home / 't.db'}", COLUMNS="80", LINES="40")
    events = [_event(i, f"2026-11-{28 + i % 3:02d}T{i % 24:02d}:{i % 60:02d}:00Z") for i in range(120)]
    (home / "e.ndjson").write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    assert run("ingest", str(home / "e.ndjson"), env=environment).returncode == 0
    return environment


def _on_terminal(env: dict[str, str], *args: str, columns: int = 80) -> tuple[str, str]:
    """Run the command with stdout on a pseudo-terminal of ``columns``; (stdout, stderr)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    terminal_env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "trailhouse", *args], stdout=follower, stderr=subprocess.PIPE, env=terminal_env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done writing
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, stderr
    return b"".join(chunks).decode().replace("\r\n", "\n"), stderr


def test_lookup_piped_at_80_columns_is_tab_separated_and_whole(env: dict[str, str]) -> None:
    result = run("lookup", "--account", ACCOUNT, "--limit", "10", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:2] == ["eventTime", "eventName"] and "eventId" in header and "accessKeyId" in header
    assert len(lines) == 11  # the header and ten rows, nothing else on stdout
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        assert re.fullmatch(r"2026-11-\d\dT\d\d:\d\d:00Z", row["eventTime"])
        assert re.fullmatch(r"7D3C6A1E-0000-4000-8000-\d{12}", row["eventId"])
        assert row["accessKeyId"] == KEY and row["user"] in (LONG_USER, "ci")
    assert "…" not in result.stdout
    assert "showing the first 10 events (newest first); --limit N or --all for more" in result.stderr


def test_lookup_on_an_80_column_terminal_never_cuts_ids_or_times(env: dict[str, str]) -> None:
    stdout, stderr = _on_terminal(env, "lookup", "--account", ACCOUNT, "--limit", "12")
    lines = stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), stdout
    assert "…" not in stdout
    times = re.findall(r"2026-11-\d\dT\d\d:\d\d:00Z", stdout)
    assert len(times) == 12  # every time whole, on one line
    assert len(re.findall(r"203\.0\.113\.\d+", stdout)) == 12
    assert "not shown at this terminal width" in stderr and "eventId" in stderr
    # A long user name wraps inside its column rather than being cut: all its characters are there.
    stdout, _ = _on_terminal(env, "lookup", "--account", ACCOUNT, "--limit", "3", f"User={LONG_USER}")
    assert all(len(line) <= 80 for line in stdout.splitlines()), stdout
    header, _rule, *body = stdout.splitlines()
    start, stop = header.index("user"), header.index("sourceIpAddress")
    users: list[str] = []
    for line in body:
        if line[:4] == "2026":
            users.append("")
        users[-1] += line[start:stop].strip()
    assert users == [LONG_USER] * 3, stdout


def test_keys_list_shows_the_whole_id_that_keys_disable_takes(env: dict[str, str]) -> None:
    created = json.loads(
        run("keys", "create", "--account", ACCOUNT, "--user", "x" * 50, "--json", env=env).stdout
    )
    key_id = created["accessKeyId"]
    piped = run("keys", "list", env=env).stdout.splitlines()
    assert piped[0].split("\t")[0] == "AccessKeyId" and key_id in [line.split("\t")[0] for line in piped[1:]]
    on_terminal, _ = _on_terminal(env, "keys", "list")
    assert key_id in on_terminal and all(len(line) <= 80 for line in on_terminal.splitlines())
    assert run("keys", "disable", key_id, env=env).returncode == 0


def test_lookup_streams_its_first_rows(tmp_path: Path) -> None:
    environment = clean_env(tmp_path, TRAILHOUSE_DB=f"sqlite:///{tmp_path / 'big.db'}")
    count = 30_000
    with (tmp_path / "big.ndjson").open("wb") as f:
        for i in range(count):
            f.write(
                orjson.dumps(_event(i, f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z"))
            )
            f.write(b"\n")
    assert run("ingest", str(tmp_path / "big.ndjson"), env=environment, timeout=300).returncode == 0
    # What one row costs: starting the process, opening the store, the first page.
    started = time.monotonic()
    assert run("lookup", "--account", ACCOUNT, "--limit", "1", env=environment).returncode == 0
    one_row = time.monotonic() - started

    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "trailhouse", "lookup", "--account", ACCOUNT, "--all", "--format", "tsv"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None
        header, first = process.stdout.readline(), process.stdout.readline()
        first_row_at = time.monotonic() - started
        still_running = process.poll() is None
        rest = process.stdout.read().count(b"\n")
        total = time.monotonic() - started
        assert process.wait(timeout=120) == 0
    assert header.startswith(b"eventTime\t") and first.count(b"\t") == 7
    assert rest + 1 == count  # --all: every event
    # The first row came while the rest was still being read: about when a one-row lookup ends,
    # well before the time that reading every row adds.
    timing = f"first row after {first_row_at:.2f}s of {total:.2f}s; one row alone {one_row:.2f}s"
    assert still_running, timing
    assert first_row_at - one_row < (total - one_row) / 2, timing


def test_dates_are_utc_days(env: dict[str, str]) -> None:
    day = run(
        "lookup", "--account", ACCOUNT, "--since", "2026-11-29", "--end", "2026-11-29", "--all", env=env
    )
    assert day.returncode == 0, day.stderr
    times = [line.split("\t")[0] for line in day.stdout.splitlines()[1:]]
    assert len(times) == 40 and all(t.startswith("2026-11-29T") for t in times)  # the whole day, only it
    report = run(
        "access-key",
        "report",
        KEY,
        "--account",
        ACCOUNT,
        "--since",
        "2026-11-29",
        "--format",
        "json",
        env=env,
    )
    assert report.returncode == 0, report.stderr
    bad = run("lookup", "--account", ACCOUNT, "--since", "2026-13-01", env=env)
    assert bad.returncode == 2 and "--start: '2026-13-01' is not a date" in bad.stderr
    naive = run("lookup", "--account", ACCOUNT, "--since", "2026-11-29T08:00:00", env=env)
    assert naive.returncode == 2 and "or a UTC date (2026-11-29)" in naive.stderr


def test_format_choices_are_in_help_and_checked(env: dict[str, str]) -> None:
    assert "table|tsv|ndjson|json|csv" in run("lookup", "--help", env={**env, "COLUMNS": "200"}).stdout
    wrong = run("lookup", "--account", ACCOUNT, "--format", "xml", env=env)
    assert wrong.returncode == 2 and "xml" in wrong.stderr
    as_json = run("lookup", "--account", ACCOUNT, "--format", "json", "--limit", "3", env=env)
    assert [e["userIdentity"]["accountId"] for e in json.loads(as_json.stdout)] == [ACCOUNT] * 3


def test_version(env: dict[str, str]) -> None:
    assert run("--version", env=env).stdout.strip() == f"trailhouse {package_version()}"


CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def _keys(value: object) -> set[str]:
    rows = value if isinstance(value, list) else [value]
    return {k for row in rows if isinstance(row, dict) for k in row}


def test_every_json_output_names_keys_in_camel_case(tmp_path: Path) -> None:
    environment = clean_env(tmp_path, TRAILHOUSE_DB=f"sqlite:///{tmp_path / 'j.db'}")
    (tmp_path / "e.json").write_bytes(orjson.dumps([_event(1, "2026-11-29T00:00:00Z")]))
    outputs = {
        "ingest": run("ingest", str(tmp_path / "e.json"), "--json", env=environment),
        "keys create": run("keys", "create", "--account", ACCOUNT, "--json", env=environment),
        "keys list": run("keys", "list", "--json", env=environment),
        "tokens create": run("tokens", "create", "--account", ACCOUNT, "--json", env=environment),
        "tokens list": run("tokens", "list", "--json", env=environment),
        "demo": run("demo", "--count", "10", "--json", env=environment, timeout=120),
    }
    for command, result in outputs.items():
        assert result.returncode == 0, (command, result.stderr)
        keys = _keys(json.loads(result.stdout))
        assert keys, command
        wrong = sorted(k for k in keys if not CAMEL.fullmatch(k))
        assert not wrong, f"{command}: {wrong}"


def test_a_field_of_another_type_is_shown_as_stored(tmp_path: Path) -> None:
    environment = clean_env(tmp_path, TRAILHOUSE_DB=f"sqlite:///{tmp_path / 'odd.db'}")
    odd = b'{"eventId":"odd-1","eventTime":"2026-11-29T00:00:00Z","errorCode":123456789012345678901234567890,'
    odd += b'"eventName":"X","userIdentity":{"accountId":"' + ACCOUNT.encode() + b'","userName":["a","b"]}}'
    (tmp_path / "odd.json").write_bytes(odd)
    assert run("ingest", str(tmp_path / "odd.json"), env=environment).returncode == 0
    result = run("lookup", "--account", ACCOUNT, env=environment)
    header, row = (line.split("\t") for line in result.stdout.splitlines())
    shown = dict(zip(header, row, strict=True))
    assert shown["errorCode"] == "123456789012345678901234567890" and shown["user"] == '["a","b"]'
