"""A bad setting is one line naming it and what it expects, exit 2; never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.cli._proc import clean_env, run
from trailhouse import package_version
from trailhouse.settings import Settings, SettingsError


def test_version_from_the_command_and_from_python_m(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    expected = f"trailhouse {package_version()}"
    assert package_version() != "0.1.0+unknown"  # read from the installed distribution's metadata
    via_m = run("--version", env=clean_env(tmp_path))
    assert (via_m.returncode, via_m.stdout.strip()) == (0, expected)
    script = shutil.which("trailhouse", path=str(Path(sys.executable).parent))
    assert script is not None
    direct = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (direct.returncode, direct.stdout.strip()) == (0, expected)
    # python -m trailhouse is the whole CLI, under the command's own name
    helped = run("keys", "--help", env=clean_env(tmp_path))
    assert helped.returncode == 0 and "Usage: trailhouse keys" in helped.stdout


BAD = [
    ({"TRAILHOUSE_PORT": "abc"}, ["serve"], "TRAILHOUSE_PORT is 'abc': expected a whole number"),
    ({}, ["serve", "--port", "70000"], "TRAILHOUSE_PORT (or --port) is 70000: expected a port number"),
    ({}, ["serve", "--db", "nonsense://x"], "TRAILHOUSE_DB (or --db) is 'nonsense://x': expected sqlite:///"),
    ({"TRAILHOUSE_DB": "mysql://h/db"}, ["keys", "list"], "TRAILHOUSE_DB (or --db) is 'mysql://h/db'"),
    ({"TRAILHOUSE_RETENTION_DAYS": "-1"}, ["serve"], "TRAILHOUSE_RETENTION_DAYS (or --retention-days) is -1"),
    (
        {"TRAILHOUSE_RETENTION_DAYS": "ten"},
        ["lookup", "--account", "1"],
        "TRAILHOUSE_RETENTION_DAYS is 'ten'",
    ),
    (
        {"TRAILHOUSE_MASTER_KEY": "not-base64!"},
        ["serve"],
        "TRAILHOUSE_MASTER_KEY: expected base64 of 32 bytes",
    ),
    ({"TRAILHOUSE_MASTER_KEY": "c2hvcnQ="}, ["keys", "create", "--account", "1"], "TRAILHOUSE_MASTER_KEY"),
    ({"TRAILHOUSE_THROTTLE_LOOKUP_EVENTS": "-2"}, ["serve"], "TRAILHOUSE_THROTTLE_LOOKUP_EVENTS (or"),
    ({"TRAILHOUSE_IDLE_TIMEOUT_S": "0"}, ["serve"], "TRAILHOUSE_IDLE_TIMEOUT_S is 0.0: expected seconds"),
    ({"TRAILHOUSE_LOG_LEVEL": "loud"}, ["serve"], "TRAILHOUSE_LOG_LEVEL (or --log-level) is 'loud'"),
    ({"TRAILHOUSE_INGEST_WORKERS": "-2"}, ["serve"], "TRAILHOUSE_INGEST_WORKERS (or --ingest-workers) is -2"),
    ({"TRAILHOUSE_REDIS": "localhost:6379"}, ["serve"], "TRAILHOUSE_REDIS (or --redis) is 'localhost:6379'"),
    ({}, ["serve", "--tls-cert", "/nonexistent.pem"], "expected both or neither"),
    ({}, ["copy", "--from", "nonsense://x", "--to", "sqlite:///b.db"], "is 'nonsense://x'"),
]


@pytest.mark.parametrize(("env", "args", "message"), BAD, ids=[" ".join(b[1]) + str(b[0]) for b in BAD])
def test_a_bad_setting_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], args: list[str], message: str
) -> None:
    done = run(*args, env=clean_env(tmp_path, **env), cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing was created on the way to the refusal


def test_the_master_key_itself_is_never_echoed(tmp_path: Path) -> None:
    secret_ish = "QUJD" * 10  # valid base64, wrong length
    done = run("serve", env=clean_env(tmp_path, TRAILHOUSE_MASTER_KEY=secret_ish), cwd=tmp_path)
    assert done.returncode == 2 and secret_ish not in done.stderr


def test_settings_validate_in_one_place() -> None:
    with pytest.raises(SettingsError, match="TRAILHOUSE_MAX_CONNECTIONS is -1"):
        Settings(max_connections=-1).validate()
    with pytest.raises(SettingsError, match="TRAILHOUSE_REQUEST_TIMEOUT_S"):
        Settings.from_env(request_timeout_s=0.0)
    Settings().validate()  # the defaults are valid
    with pytest.raises(SettingsError, match="TRAILHOUSE_SQLITE_CACHE_MIB is 1: expected MiB, at least 2"):
        Settings(sqlite_cache_mib=1).validate()


def test_every_setting_reads_its_variable_and_goes_back_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # One declaration per setting: from_env and to_env agree on every variable.
    for row in Settings.table():
        monkeypatch.delenv(row.env, raising=False)
    monkeypatch.setenv("TRAILHOUSE_SQLITE_CACHE_MIB", "64")
    monkeypatch.setenv("TRAILHOUSE_QUERY_TIMEOUT_S", "2.5")
    settings = Settings.from_env()
    assert settings.sqlite_cache_mib == 64 and settings.query_timeout_s == 2.5
    env = settings.to_env()
    assert set(env) == {row.env for row in Settings.table()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Workers get the data directory resolved, so all of them find the same master key.
    assert Settings.from_env() == dataclasses.replace(settings, data_dir=str(settings.resolved_data_dir()))
