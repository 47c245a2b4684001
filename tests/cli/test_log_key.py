"""The Merkle log's signing key is made only where nothing was signed yet: a server whose store's log
was signed refuses to start without that key, and the read-only ``log`` commands never make one
(``log public-key`` would print a key nothing was signed with)."""

from __future__ import annotations

import base64
import secrets
import socket
import subprocess
from pathlib import Path

from tests.cli._proc import clean_env, run
from trailhouse.model.event_text import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.integrity.keys import load_log_signer
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.note import generate_signer
from trailhouse.storage import open_store

ACCOUNT = "1234567890123456"
#: The store is made here, in process: its master key is given rather than made with it.
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def _store_with_events(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    try:
        store.append(
            [
                event_from_mapping(
                    {
                        "eventId": f"logkey-{n}",
                        "eventName": "DescribeInstances",
                        "eventTime": format_wire_time(now_ms() - 60_000),
                        "userIdentity": {"type": "root-account", "accountId": ACCOUNT},
                    }
                )
                for n in range(5)
            ]
        )
    finally:
        store.close()


def _sign_log(path: Path, data_dir: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    try:
        assert sequence(store, load_log_signer(None, data_dir), now_ms) == 5
    finally:
        store.close()


def _one_line(done: object) -> str:
    assert isinstance(done, subprocess.CompletedProcess)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    return lines[0]


def _env_with_events(tmp_path: Path, data: Path) -> dict[str, str]:
    """The environment of a CLI run on a SQLite store holding events, with ``data`` as its data
    directory (empty: no log key there)."""
    db = tmp_path / "t.db"
    _store_with_events(db)
    return clean_env(
        tmp_path / "home",
        TRAILHOUSE_DB=f"sqlite:///{db}",
        TRAILHOUSE_DATA_DIR=str(data),
        TRAILHOUSE_MASTER_KEY=MASTER_KEY,
    )


def _serve_on_a_taken_port(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``trailhouse serve`` on a port this test holds: it runs every check, then cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        return run("serve", "--port", str(taken.getsockname()[1]), env=env)


def test_serve_refuses_to_sign_on_with_a_new_key(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _store_with_events(db)
    _sign_log(db, tmp_path / "signed-here")
    env = clean_env(tmp_path / "home", TRAILHOUSE_DB=f"sqlite:///{db}", TRAILHOUSE_MASTER_KEY=MASTER_KEY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Should the check fail, serve stops at the port, not runs.
    refused = _serve_on_a_taken_port({**env, "TRAILHOUSE_DATA_DIR": str(elsewhere)})
    line = _one_line(refused)
    assert f"no log key at {elsewhere / 'log.key'}" in line
    assert "TRAILHOUSE_DATA_DIR" in line and "TRAILHOUSE_LOG_KEY" in line
    assert not (elsewhere / "log.key").exists()


def test_a_store_whose_log_is_unsigned_gets_a_key(tmp_path: Path) -> None:
    """Nothing signed yet (events loaded, no server ran): the first server makes the key."""
    data = tmp_path / "data"
    env = _env_with_events(tmp_path, data)
    # The server gets past every check, makes the key, then cannot listen.
    started = _serve_on_a_taken_port(env)
    assert started.returncode != 0
    assert "no log key" not in started.stderr, started.stderr
    assert (data / "log.key").exists()


def test_log_commands_never_make_a_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env_with_events(tmp_path, data)
    for args in (("log", "public-key"), ("log", "checkpoint", "--account", ACCOUNT)):
        line = _one_line(run(*args, env=env))
        assert f"no log key at {data / 'log.key'}" in line and "TRAILHOUSE_LOG_KEY" in line
        assert not (data / "log.key").exists()
    signer = generate_signer("trailhouse.test")
    shown = run("log", "public-key", env={**env, "TRAILHOUSE_LOG_KEY": signer.skey})
    assert shown.returncode == 0 and shown.stdout.strip() == signer.verifier.vkey
