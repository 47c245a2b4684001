"""The generated master key lives in one data directory, whatever the working directory; a server
whose key cannot open the stored secrets refuses to start, and a call that meets one anyway is
not a 500."""

from __future__ import annotations

import base64
import json
import secrets
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
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = run("serve", "--port", "1", env={**mine, "TRAILHOUSE_MASTER_KEY": wrong})
    assert refused.returncode == 1 and "the master key (TRAILHOUSE_MASTER_KEY) cannot open" in refused.stderr
    assert wrong not in refused.stderr


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
