"""The generated master key lives in one data directory, whatever the working directory; it is
made with a new store and never beside one that exists; a server whose key cannot open the stored
secrets refuses to start, and a call that meets one anyway is not a 500."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import stat
from pathlib import Path

import pytest

from tests.cli._proc import clean_env, run, serving
from tests.conftest import pg_schema_url
from trailhouse.service.credentials import create_access_key
from trailhouse.service.secrets import Sealer
from trailhouse.settings import Settings, default_data_dir
from trailhouse.storage import open_store

ACCOUNT = "1234567890123456"


def _lookup_with_sdk(endpoint: str, key_id: str, secret: str) -> int:
    from alibabacloud_actiontrail20200706 import models
    from alibabacloud_actiontrail20200706.client import Client
    from alibabacloud_tea_openapi.models import Config

    client = Client(
        Config(access_key_id=key_id, access_key_secret=secret, endpoint=endpoint, protocol="http")
    )
    return int(client.lookup_events_with_options(models.LookupEventsRequest(), _runtime()).status_code)


def _runtime() -> object:
    from alibabacloud_tea_util.models import RuntimeOptions

    return RuntimeOptions(autoretry=False, max_attempts=1, read_timeout=10_000, connect_timeout=5_000)


def test_default_data_dir_is_per_user_never_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    pg = Settings(db_url="postgresql://u@h/db")
    assert pg.resolved_data_dir() == tmp_path / "home" / ".local" / "share" / "trailhouse"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert pg.resolved_data_dir() == default_data_dir() == tmp_path / "xdg" / "trailhouse"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/xdg")  # the XDG spec says to ignore a relative one
    assert pg.resolved_data_dir() == tmp_path / "home" / ".local" / "share" / "trailhouse"
    # beside the SQLite file it opens, as documented; an explicit directory wins over both
    assert Settings(db_url=f"sqlite:///{tmp_path}/a/t.db").resolved_data_dir() == tmp_path / "a"
    assert Settings(db_url="sqlite:///x.db", data_dir="rel").resolved_data_dir() == tmp_path / "rel"


def test_generated_key_and_its_directory_are_private(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home", TRAILHOUSE_DB=f"sqlite:///{tmp_path / 'db' / 't.db'}")
    (tmp_path / "db").mkdir()
    env["TRAILHOUSE_DATA_DIR"] = str(tmp_path / "state" / "trailhouse")
    done = run("keys", "create", "--account", ACCOUNT, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for made in (tmp_path / "state", tmp_path / "state" / "trailhouse"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
    key_file = tmp_path / "state" / "trailhouse" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_bytes().strip())) == 32
    assert list((tmp_path / "db").iterdir()) == [tmp_path / "db" / "t.db"]  # the key went where it was told


@pytest.mark.postgres
@pytest.mark.e2e
def test_key_created_from_one_folder_serves_from_another(tmp_path: Path, pg_available: str) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    with pg_schema_url(pg_available) as url:
        env = clean_env(tmp_path / "home", TRAILHOUSE_DB=url)
        created = run("keys", "create", "--account", ACCOUNT, "--json", env=env, cwd=one)
        assert created.returncode == 0, created.stderr
        pair = json.loads(created.stdout)
        assert (tmp_path / "home" / ".local" / "share" / "trailhouse" / "master.key").exists()
        assert list(one.iterdir()) == []  # nothing of ours in the working directory
        with serving(env=env, cwd=other) as served:
            status = _lookup_with_sdk(
                f"127.0.0.1:{served.port}", pair["accessKeyId"], pair["accessKeySecret"]
            )
        assert status == 200
        assert list(other.iterdir()) == []


def test_serve_refuses_a_master_key_that_cannot_open_the_stored_secrets(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    mine = clean_env(tmp_path, TRAILHOUSE_DB=db, TRAILHOUSE_DATA_DIR=str(tmp_path / "mine"))
    assert run("keys", "create", "--account", ACCOUNT, env=mine).returncode == 0
    theirs = {**mine, "TRAILHOUSE_DATA_DIR": str(tmp_path / "theirs")}
    refused = run("serve", "--port", "1", env=theirs)  # refused before it would listen anywhere
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr
    assert str(tmp_path / "theirs" / "master.key") in lines[0]
    assert "TRAILHOUSE_DATA_DIR" in lines[0] and "TRAILHOUSE_MASTER_KEY" in lines[0]
    assert not (tmp_path / "theirs").exists()  # no key of its own for a store that has one
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = run("serve", "--port", "1", env={**mine, "TRAILHOUSE_MASTER_KEY": wrong})
    assert refused.returncode == 1 and "the master key (TRAILHOUSE_MASTER_KEY) cannot open" in refused.stderr
    assert wrong not in refused.stderr


def _refused_for_want_of_its_key(done: object, key_file: Path) -> None:
    import subprocess

    assert isinstance(done, subprocess.CompletedProcess)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert f"no master key at {key_file} for the existing store" in lines[0]
    assert "TRAILHOUSE_DATA_DIR" in lines[0] and "TRAILHOUSE_MASTER_KEY" in lines[0]
    assert not key_file.exists()


def test_a_store_copied_to_another_folder_gets_no_key_of_its_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run(
        "keys",
        "create",
        "--account",
        ACCOUNT,
        "--db",
        f"sqlite:///{tmp_path / 'a' / 't.db'}",
        env=clean_env(home),
    )
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "a" / "master.key").exists()  # made with the store, beside it
    shutil.copy(tmp_path / "a" / "t.db", tmp_path / "b" / "t.db")
    copied = f"sqlite:///{tmp_path / 'b' / 't.db'}"
    env = clean_env(home, TRAILHOUSE_DB=copied)
    lost = tmp_path / "b" / "master.key"
    # The commands that seal or open secrets refuse, and say where they looked.
    _refused_for_want_of_its_key(run("keys", "create", "--account", ACCOUNT, env=env), lost)
    _refused_for_want_of_its_key(run("demo", "--count", "1", env=env), lost)
    _refused_for_want_of_its_key(run("serve", "--port", "1", env=env), lost)
    assert not (tmp_path / "b" / "oss").exists()  # demo made nothing before refusing
    # Those that need no key work on it as before, and make none.
    tokens = run("tokens", "create", "--account", ACCOUNT, env=env)
    assert tokens.returncode == 0, tokens.stderr
    (tmp_path / "e.json").write_text("[]")
    assert run("ingest", str(tmp_path / "e.json"), env=env).returncode == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["t.db"]
    listed = run("keys", "list", "--json", env=env)
    assert len(json.loads(listed.stdout)) == 1  # the refused keys create stored nothing
    # Pointed at the key it was made with, the copy works.
    found = run(
        "keys", "create", "--account", ACCOUNT, env={**env, "TRAILHOUSE_DATA_DIR": str(tmp_path / "a")}
    )
    assert found.returncode == 0, found.stderr
    assert not lost.exists()


def test_the_command_that_creates_a_store_makes_its_key(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    (tmp_path / "e.json").write_text("[]")
    # A store begun by a command that needs no key still gets one, for the commands that do.
    for name, args in (
        ("ingest", ("ingest", str(tmp_path / "e.json"))),
        ("tokens", ("tokens", "create", "--account", ACCOUNT)),
        ("migrate", ("migrate", "--create")),
        ("demo", ("demo", "--count", "1")),
    ):
        db = f"sqlite:///{tmp_path / name / 't.db'}"
        done = run(*args, "--db", db, env=env)
        assert done.returncode == 0, (name, done.stderr)
        assert (tmp_path / name / "master.key").exists(), name
        later = run("keys", "create", "--account", ACCOUNT, "--db", db, env=env)
        assert later.returncode == 0, (name, later.stderr)
    # A copy's target gets none: its AccessKeys arrive sealed with the source's key.
    copied = run(
        "copy",
        "--from",
        f"sqlite:///{tmp_path / 'demo' / 't.db'}",
        "--to",
        f"sqlite:///{tmp_path / 'to' / 't.db'}",
        env=env,
    )
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (tmp_path / "to").iterdir()) == ["t.db"]
    # Without --create, migrate creates nothing, key included.
    assert run("migrate", "--db", f"sqlite:///{tmp_path / 'none' / 't.db'}", env=env).returncode == 1
    assert not (tmp_path / "none").exists()


@pytest.mark.postgres
def test_another_data_dir_gets_no_key_for_an_existing_postgresql_store(
    tmp_path: Path, pg_available: str
) -> None:
    with pg_schema_url(pg_available) as url:
        mine = clean_env(tmp_path / "mine", TRAILHOUSE_DB=url)
        created = run("keys", "create", "--account", ACCOUNT, env=mine)
        assert created.returncode == 0, created.stderr
        # Another user (another HOME), or a mistyped TRAILHOUSE_DATA_DIR, on the same database.
        theirs = clean_env(tmp_path / "theirs", TRAILHOUSE_DB=url)
        lost = tmp_path / "theirs" / ".local" / "share" / "trailhouse" / "master.key"
        _refused_for_want_of_its_key(run("keys", "create", "--account", ACCOUNT, env=theirs), lost)
        typo = {**mine, "TRAILHOUSE_DATA_DIR": str(tmp_path / "typo")}
        _refused_for_want_of_its_key(run("serve", "--port", "1", env=typo), tmp_path / "typo" / "master.key")


@pytest.mark.e2e
def test_a_secret_sealed_with_another_key_is_503_not_500(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    env = clean_env(tmp_path, TRAILHOUSE_DB=db, TRAILHOUSE_DATA_DIR=str(tmp_path / "node"))
    with serving(env=env) as served:
        # Another node, misconfigured with its own key, creates a key in the shared store.
        store = open_store(db)
        try:
            stray = create_access_key(store, Sealer(secrets.token_bytes(32)), account_id=ACCOUNT)
        finally:
            store.close()
        from Tea.exceptions import TeaException

        with pytest.raises(TeaException) as caught:
            _lookup_with_sdk(f"127.0.0.1:{served.port}", stray.key.access_key_id, stray.secret)
    assert caught.value.code == "ServiceUnavailable"
    assert caught.value.data["statusCode"] == 503  # type: ignore[index]
    assert "master key is misconfigured" in caught.value.message
