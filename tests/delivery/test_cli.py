"""`trailhouse trails deliver --once` and `trailhouse trails status` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from trailhouse.storage import open_store

from ._events import ACCOUNT, add_trail, event, in_files, records


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trailhouse.cli", *args], env=env, capture_output=True, timeout=120
    )


def test_deliver_once_then_status(tmp_path: Path) -> None:
    from trailhouse.delivery.object_storage import DirectoryStorage

    db = f"sqlite:///{tmp_path}/t.db"
    env = {**os.environ, "TRAILHOUSE_OSS_DIR": str(tmp_path / "oss"), "TRAILHOUSE_DATA_DIR": str(tmp_path)}
    env.pop("TRAILHOUSE_NATS_URL", None)
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("cli-bucket")
    store = open_store(db)
    add_trail(
        store, oss_bucket_name="cli-bucket", sls_project_arn=f"acs:log:cn-hangzhou:{ACCOUNT}:project/p-cli"
    )
    store.close()
    first = _cli("trails", "deliver", "--once", "--db", db, "--json", env=env)  # starts the trail at the head
    assert first.returncode == 1  # the stream has no server configured: an error, and said so
    store = open_store(db)
    store.append(records([event() for _ in range(3)]))
    store.close()
    done = _cli("trails", "deliver", "--once", "--db", db, "--json", env=env)
    summary = orjson.loads(done.stdout)
    assert summary["trails"] == 1 and summary["events"]["oss"] == 3 and summary["files"] == 1
    assert len(in_files(storage, "cli-bucket")) == 3
    status = _cli("trails", "status", "trail-one", "--account", ACCOUNT, "--db", db, "--json", env=env)
    assert status.returncode == 0, status.stderr.decode()
    (row,) = orjson.loads(status.stdout)
    assert row["OssBucketStatus"] is True and row["LatestDeliveryTime"].endswith("Z")
    assert row["LatestDeliveryError"] == "" and row["OssDeliveredEvents"] == 3
    assert row["SlsLogStoreStatus"] is False and "TRAILHOUSE_NATS_URL" in row["LatestDeliveryLogServiceError"]
    assert row["BehindEvents"] == 3  # the stream has delivered nothing of the three
    table = _cli("trails", "status", "--db", db, env={**env, "COLUMNS": "250"})
    assert table.returncode == 0 and b"cli-bucket" in table.stdout
    missing = _cli("trails", "status", "nope", "--db", db, env=env)
    assert missing.returncode != 0 and b"no trail named" in missing.stderr
