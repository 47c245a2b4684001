"""Delivery by real `trailhouse serve` processes: kill -9 during delivery, a destination that is
down, and two nodes on one PostgreSQL database (one delivers, the other takes over).

Afterwards the files in the directory of buckets and the records in the NATS stream hold every
event of the trail's scope exactly once, in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.reliability._harness import Creds, ServeProcess, make_creds, new_master_key
from tests.reliability._proxy import TcpProxy
from trailhouse.model.trail import EventRW
from trailhouse.storage import open_store

from ._events import add_trail, event

pytestmark = pytest.mark.timeout(300)


def _ingest(server_url: str, creds: Creds, events: list[dict[str, object]]) -> None:
    r = httpx.post(f"{server_url}/api/v1/events", json=events, headers=creds.bearer, timeout=30)
    assert r.status_code == 200, r.text


class Feeder:
    """Ingests batches through whichever server is up, until stopped; remembers what was acknowledged."""

    def __init__(self, servers: list[ServeProcess], creds: Creds) -> None:
        self.servers = servers
        self.creds = creds
        self.acked: list[dict[str, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            batch = [
                event(account=self.creds.account_id, rw="Read" if (i + k) % 4 == 0 else "Write")
                for k in range(5)
            ]
            i += 5
            for server in self.servers:
                try:
                    _ingest(server.url, self.creds, batch)
                except (httpx.TransportError, AssertionError):
                    continue
                self.acked.extend(batch)
                break
            time.sleep(0.02)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _file_event_ids(root: Path, bucket: str) -> list[str]:
    """Event ids of every file in the bucket, files in key order (the window time orders them)."""
    ids: list[str] = []
    for path in sorted((root / bucket).rglob("*.gz"), key=lambda p: p.relative_to(root).as_posix()):
        if "Actiontrail-Digest" in path.parts:  # the digests beside the files
            continue
        ids.extend(e["eventId"] for e in orjson.loads(gzip.decompress(path.read_bytes())))
    return ids


def _digests_verify(data_dir: Path, bucket_dir: Path, db_url: str) -> None:
    """The bucket's digests (one per window, written across the kills) verify as one chain with
    the log's public key, and list every file."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRAILHOUSE_DATA_DIR": str(data_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "trailhouse.cli", *args], env=env, capture_output=True)

    vkey = cli("log", "public-key", "--db", db_url).stdout.decode().strip()
    done = cli("verify", "--key", vkey, "--delivery", str(bucket_dir), "--digests", str(bucket_dir), "--json")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    listed = set()
    for path in bucket_dir.rglob("*.json.gz"):
        listed |= {f["path"] for f in orjson.loads(gzip.decompress(path.read_bytes()))["logFiles"]}
    files = {p.relative_to(bucket_dir).as_posix() for p in bucket_dir.rglob("Actiontrail_*.gz")}
    assert files and listed == files


def _stream_event_ids(nats_url: str, stream: str) -> list[str]:
    import nats

    async def read() -> list[str]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        out: list[str] = []
        try:
            info = await js.stream_info(stream)
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                out.append(orjson.loads(orjson.loads(msg.data)["event"])["eventId"])
            await js.delete_stream(stream)
        finally:
            await nc.close()
        return out

    return asyncio.run(read())


def _expected(db_url: str, account: str, after_seq: int) -> list[str]:
    """The trail's scope in arrival order: Write events of the account after the trail started."""
    store = open_store(db_url)
    try:
        out = []
        for entry in store.read_log(after_seq=after_seq, limit=1_000_000):
            doc = orjson.loads(entry.event.body)
            if entry.account_id == account and doc["eventRW"] == "Write":
                out.append(entry.event.event_id)
        return out
    finally:
        store.close()


def _wait_caught_up(db_url: str, account: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = open_store(db_url)
        try:
            head = store.newest_seq()
            cps = store.list_checkpoints(account_id=account, trail_name="trail-one")
        finally:
            store.close()
        if len(cps) == 2 and all(cp.delivered_seq >= head and not cp.window_end_seq for cp in cps):
            return
        time.sleep(0.3)
    raise AssertionError(f"delivery did not catch up: {cps}")


@contextlib.contextmanager
def _trail(db_url: str, tmp_path: Path) -> Iterator[tuple[Creds, str, str, int, str]]:
    key = new_master_key()
    creds = make_creds(db_url, key)
    bucket = "b-" + uuid.uuid4().hex[:10]
    (tmp_path / "oss" / bucket).mkdir(parents=True)
    project = "p-" + uuid.uuid4().hex[:10]
    store = open_store(db_url)
    try:
        add_trail(
            store,
            account_id=creds.account_id,
            oss_bucket_name=bucket,
            sls_project_arn=f"acs:log:cn-hangzhou:{creds.account_id}:project/{project}",
            event_rw=EventRW.WRITE,
        )
        start = store.newest_seq()
    finally:
        store.close()
    yield creds, bucket, project, start, key


def _env(tmp_path: Path, nats_url: str) -> dict[str, str]:
    return {
        "TRAILHOUSE_OSS_DIR": str(tmp_path / "oss"),
        "TRAILHOUSE_NATS_URL": nats_url,
        "TRAILHOUSE_DELIVERY_WINDOW_S": "1",
        "TRAILHOUSE_DELIVERY_LEASE_S": "3",
    }


def test_kill_9_during_delivery_loses_and_repeats_nothing(
    backend_url: str, tmp_path: Path, nats_url: str
) -> None:
    db_url = backend_url
    with _trail(db_url, tmp_path) as (creds, bucket, project, start, key):
        server = ServeProcess(db_url, tmp_path, key, _env(tmp_path, nats_url)).start()
        try:
            with Feeder([server], creds) as feeder:
                for _ in range(3):
                    time.sleep(2.5)
                    server.kill9()
                    server.start()
                time.sleep(1.5)
            assert len(feeder.acked) > 50
            _wait_caught_up(db_url, creds.account_id)
        finally:
            server.stop()
        expected = _expected(db_url, creds.account_id, start)
        acked_in_scope = {e["eventId"] for e in feeder.acked if e["eventRW"] == "Write"}
        assert acked_in_scope <= set(expected)
        assert _file_event_ids(tmp_path / "oss", bucket) == expected
        assert _stream_event_ids(nats_url, project) == expected
        _digests_verify(tmp_path, tmp_path / "oss" / bucket, db_url)


def test_stream_down_then_back_catches_up(backend_url: str, tmp_path: Path, nats_url: str) -> None:
    db_url = backend_url
    port = int(nats_url.rsplit(":", 1)[1])
    with _trail(db_url, tmp_path) as (creds, bucket, project, start, key), TcpProxy(port) as proxy:
        env = _env(tmp_path, f"nats://127.0.0.1:{proxy.port}")
        server = ServeProcess(db_url, tmp_path, key, env).start()
        try:
            with Feeder([server], creds):
                time.sleep(1.5)
                proxy.refuse()
                time.sleep(4)
            # A publish in flight when the stream went away fails only at its ack timeout (10 s), so
            # the error is waited for, not assumed after a fixed sleep.
            store = open_store(db_url)
            try:
                deadline = time.monotonic() + 30
                while True:
                    cp = store.get_checkpoint(account_id=creds.account_id, trail_name="trail-one", sink="sls")
                    if (cp is not None and cp.last_error) or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                assert cp is not None and cp.last_error and cp.delivered_seq < store.newest_seq()
            finally:
                store.close()
            proxy.forward()
            _wait_caught_up(db_url, creds.account_id)
        finally:
            server.stop()
        expected = _expected(db_url, creds.account_id, start)
        assert _stream_event_ids(nats_url, project) == expected
        assert _file_event_ids(tmp_path / "oss", bucket) == expected


def test_two_nodes_one_delivers_and_the_other_takes_over(
    pg_available: str, tmp_path: Path, nats_url: str
) -> None:
    from tests.conftest import pg_schema_url

    with (
        pg_schema_url(pg_available) as db_url,
        _trail(db_url, tmp_path) as (creds, bucket, project, start, key),
    ):
        env = _env(tmp_path, nats_url)
        a = ServeProcess(db_url, tmp_path, key, env).start()
        b = ServeProcess(db_url, tmp_path, key, env).start()
        try:
            with Feeder([a, b], creds):
                time.sleep(3)
                store = open_store(db_url)
                try:
                    owner = store.lease_owner(
                        f"trail/{creds.account_id}/trail-one", now_ms=int(time.time() * 1000)
                    )
                    assert owner is not None
                    pid = int(owner.split(":")[1])
                    assert pid in (a.pid, b.pid)
                    holder, other = (a, b) if pid == a.pid else (b, a)
                    holder.kill9()
                    killed = time.monotonic()
                    while True:
                        owner = store.lease_owner(
                            f"trail/{creds.account_id}/trail-one", now_ms=int(time.time() * 1000)
                        )
                        if owner is not None and int(owner.split(":")[1]) == other.pid:
                            break
                        assert time.monotonic() - killed < 30, "no takeover within 30 s"
                        time.sleep(0.2)
                    takeover = time.monotonic() - killed
                finally:
                    store.close()
                time.sleep(2)
            _wait_caught_up(db_url, creds.account_id)
        finally:
            a.stop()
            b.stop()
        assert takeover < 30
        expected = _expected(db_url, creds.account_id, start)
        assert _file_event_ids(tmp_path / "oss", bucket) == expected
        assert _stream_event_ids(nats_url, project) == expected
        _digests_verify(tmp_path, tmp_path / "oss" / bucket, db_url)


def test_kill_9_with_an_s3_destination(tmp_path: Path, nats_url: str, moto_endpoint: str) -> None:
    """The same, delivering to a real S3 endpoint (a moto server process) instead of a directory."""
    from trailhouse.delivery.object_storage import S3Storage

    db_url = f"sqlite:///{tmp_path / 's3.db'}"
    with _trail(db_url, tmp_path) as (creds, bucket, project, start, key):
        s3 = S3Storage(moto_endpoint)
        s3.create_bucket(bucket)
        env = _env(tmp_path, nats_url) | {"TRAILHOUSE_OSS_ENDPOINT": moto_endpoint}
        server = ServeProcess(db_url, tmp_path, key, env).start()
        try:
            with Feeder([server], creds) as feeder:
                for _ in range(2):
                    time.sleep(2.5)
                    server.kill9()
                    server.start()
                time.sleep(1.5)
            assert len(feeder.acked) > 50
            _wait_caught_up(db_url, creds.account_id)
        finally:
            server.stop()
        expected = _expected(db_url, creds.account_id, start)
        keys = [k for k in s3.list(bucket) if "Actiontrail-Digest/" not in k]  # in window time order
        ids = [e["eventId"] for k in keys for e in orjson.loads(gzip.decompress(s3.get(bucket, k)))]
        assert ids == expected
        assert _stream_event_ids(nats_url, project) == expected
