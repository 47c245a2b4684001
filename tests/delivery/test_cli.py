"""`trailhouse trails deliver --once` and `trailhouse trails status` as an operator runs them."""

from __future__ import annotations

import gzip
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
    assert row["ossBucketStatus"] is True and row["latestDeliveryTime"].endswith("Z")
    assert row["latestDeliveryError"] == "" and row["ossDeliveredEvents"] == 3
    assert row["slsLogStoreStatus"] is False and "TRAILHOUSE_NATS_URL" in row["latestDeliveryLogServiceError"]
    assert row["behindEvents"] == 3  # the stream has delivered nothing of the three
    table = _cli("trails", "status", "--db", db, env={**env, "COLUMNS": "250"})
    assert table.returncode == 0 and b"cli-bucket" in table.stdout
    missing = _cli("trails", "status", "nope", "--db", db, env=env)
    assert missing.returncode != 0 and b"no trail named" in missing.stderr


def test_demo_trail_delivers_the_demo_data_into_a_directory(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/demo.db"
    env = {**os.environ, "TRAILHOUSE_DATA_DIR": str(tmp_path), "COLUMNS": "250"}
    for name in ("TRAILHOUSE_OSS_DIR", "TRAILHOUSE_OSS_ENDPOINT", "TRAILHOUSE_NATS_URL"):
        env.pop(name, None)
    made = _cli("demo", "--db", db, "--count", "300", env=env)
    assert made.returncode == 0, made.stderr.decode()
    files = tmp_path / "oss" / "trailhouse-demo"
    assert f"{files}/AliyunLogs/Actiontrail/" in made.stdout.decode()
    done = _cli("trails", "deliver", "--once", "--db", db, "--json", env=env)
    assert done.returncode == 0, done.stderr.decode()
    store = open_store(db)
    try:
        (job,), _ = store.list_history_jobs(account_id=ACCOUNT, offset=0, limit=10)
        assert job.status == 2  # COMPLETE: the demo data was backfilled
        wanted = {
            e.event.event_id
            for e in store.read_log(after_seq=0, limit=100_000)
            if e.account_id == ACCOUNT
            and job.window_start_ms <= e.event.event_time_ms < job.window_end_ms
            and orjson.loads(e.event.body)["eventCategory"] != "Data"  # the trail has no data event selector
        }
    finally:
        store.close()
    delivered = [
        e["eventId"]
        for p in sorted(files.rglob("Actiontrail_*.gz"))
        for e in orjson.loads(gzip.decompress(p.read_bytes()))
    ]
    assert len(wanted) > 100 and len(delivered) == len(wanted) and set(delivered) == wanted
