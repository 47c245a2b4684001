"""Digests delivered beside each OSS window (delivery/digests.py): real stores on both backends, a
directory of buckets, the engine in process and `trailhouse verify` over the bucket."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from trailhouse.cli import app
from trailhouse.delivery.digests import DigestWriter
from trailhouse.delivery.engine import DeliveryEngine, WindowDelivered
from trailhouse.delivery.object_storage import DirectoryStorage
from trailhouse.model.trail import EventRW
from trailhouse.service.integrity.checkpoint import open_checkpoint
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.note import Signer, generate_signer
from trailhouse.settings import Settings
from trailhouse.storage.base import EventStore

from ._events import ACCOUNT, OTHER, add_trail, event, records

DIGEST = re.compile(
    r"^audit/AliyunLogs/Actiontrail-Digest/cn-hangzhou/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/"
    r"(?P<account>\d+)_Actiontrail-Digest_cn-hangzhou_trail-one_(?P=y)(?P=m)(?P=d)T\d{6}Z\.json\.gz$"
)


def _engine(store: EventStore, storage: DirectoryStorage, writer: DigestWriter) -> DeliveryEngine:
    engine = DeliveryEngine(store, Settings(delivery_window_s=0.2), storage=storage, poll_s=0.05)
    engine.after_window.append(writer)
    return engine


def _writer(store: EventStore, signer: Signer, **kw: Any) -> DigestWriter:
    return DigestWriter(store, signer, catch_up=lambda: sequence(store, signer, lambda: 0), **kw)


def _digests(storage: DirectoryStorage, bucket: str) -> dict[str, dict[str, Any]]:
    return {
        k: orjson.loads(gzip.decompress(storage.get(bucket, k)))
        for k in storage.list(bucket)
        if "Actiontrail-Digest/" in k
    }


def _verify(signer: Signer, bucket_dir: Path) -> tuple[int, dict[str, Any]]:
    args = ["verify", "--key", signer.verifier.vkey, "--delivery", str(bucket_dir),
            "--digests", str(bucket_dir), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(result.stdout)


def _deliver_windows(store: EventStore, engine: DeliveryEngine, windows: int, per: int = 4) -> None:
    for _ in range(windows):
        # Write events, some the trail's Write filter leaves out: their leaves are in the digest.
        store.append(records([event(rw="Read" if i % 3 == 0 else "Write") for i in range(per)]))
        asyncio.run(engine.run_once())


def test_windows_deliver_a_chain_of_digests_that_verify(backend_store: EventStore, tmp_path: Path) -> None:
    store, signer = backend_store, generate_signer("digest-delivery")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("dig-bucket")
    add_trail(store, oss_bucket_name="dig-bucket", oss_key_prefix="audit", event_rw=EventRW.WRITE)
    writer = _writer(store, signer)
    engine = _engine(store, storage, writer)
    asyncio.run(engine.run_once())  # the trail starts at the head
    _deliver_windows(store, engine, 3)
    digests = _digests(storage, "dig-bucket")
    assert len(digests) == 3 and writer.written == 3
    chain = [digests[k] for k in sorted(digests)]
    for key in digests:
        m = DIGEST.match(key)
        assert m and m["account"] == ACCOUNT, key
    previous = None
    for digest in chain:
        checkpoint = open_checkpoint(digest["checkpoint"], [signer.verifier])
        assert checkpoint.size == digest["treeSize"] and digest["accountId"] == ACCOUNT
        assert digest["previousTreeSize"] == (previous["treeSize"] if previous else 0)
        expected = hashlib.sha256(gzip.compress(orjson.dumps(previous, option=orjson.OPT_SORT_KEYS), mtime=0))
        assert digest["previousDigestSha256"] == (expected.hexdigest() if previous else None)
        (listed,) = digest["logFiles"]
        assert hashlib.sha256(storage.get("dig-bucket", listed["path"])).hexdigest() == listed["sha256"]
        assert len(listed["leafIndexes"]) == 2 and -1 not in listed["leafIndexes"]
        previous = digest
    assert chain[-1]["treeSize"] == 12  # every event of the account, also those not delivered

    bucket = tmp_path / "oss" / "dig-bucket"
    code, report = _verify(signer, bucket)
    assert code == 0, report
    assert report["digests"] == 3
    # Tampering with the copy is named.
    files = sorted(p for p in bucket.rglob("Actiontrail_*.gz"))
    middle_digest = sorted(bucket.rglob("*.json.gz"))[1]
    saved = files[0].read_bytes()
    raw = gzip.decompress(saved).replace(b'"alice"', b'"mallory"', 1)
    files[0].write_bytes(gzip.compress(raw, mtime=0))
    code, report = _verify(signer, bucket)
    assert code == 1 and set(report["problems"]) == {"file-altered"}
    files[0].write_bytes(saved)
    files[2].unlink()
    code, report = _verify(signer, bucket)
    assert code == 1 and set(report["problems"]) == {"file-missing"}
    middle_digest.unlink()
    code, report = _verify(signer, bucket)
    assert code == 1 and "digest-missing" in report["problems"]


def test_a_rewritten_window_gives_the_same_digest(backend_store: EventStore, tmp_path: Path) -> None:
    """A hook after the digest fails once: the window is written again, its digest has the same key
    and bytes, and the chain's next digest follows it (also from a new writer, as after kill -9)."""
    store, signer = backend_store, generate_signer("digest-retry")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("dig-bucket")
    add_trail(store, oss_bucket_name="dig-bucket", oss_key_prefix="audit")
    writer = _writer(store, signer)
    engine = _engine(store, storage, writer)
    failures = [RuntimeError("the disk is full")]
    written: list[dict[str, bytes]] = []

    def flaky(window: WindowDelivered) -> None:
        written.append({k: storage.get("dig-bucket", k) for k in _digests(storage, "dig-bucket")})
        if failures:
            raise failures.pop()

    engine.after_window.append(flaky)
    asyncio.run(engine.run_once())
    _deliver_windows(store, engine, 1)  # the window's hook fails: not committed
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.window_end_seq  # held back
    # Meanwhile the account's log grows past the window: the digest stays pinned to the window.
    store.append(records([event(account=ACCOUNT) for _ in range(5)]))
    while sequence(store, signer, lambda: 0):
        pass
    engine.after_window[0] = _writer(store, signer)  # a new writer, as after a restart
    engine._runs.clear()  # noqa: SLF001 - and the engine reloads its checkpoint, as after kill -9
    asyncio.run(engine.run_once())
    first, again = written[0], written[1]
    assert len(first) == 1 and first == {k: v for k, v in again.items() if k in first}
    (key,) = first
    digest = orjson.loads(gzip.decompress(first[key]))
    assert digest["treeSize"] == 4 and digest["previousTreeSize"] == 0
    nxt = [d for k, d in _digests(storage, "dig-bucket").items() if k != key]
    assert len(nxt) == 1  # the five later events: the next window
    assert nxt[0]["previousTreeSize"] == 4 and nxt[0]["treeSize"] == 9
    assert nxt[0]["previousDigestSha256"] == hashlib.sha256(first[key]).hexdigest()
    code, report = _verify(signer, tmp_path / "oss" / "dig-bucket")
    assert code == 0, report


def test_a_digest_waits_for_the_log_and_fails_the_window_if_it_does_not_come(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store, signer = backend_store, generate_signer("digest-wait")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("dig-bucket")
    add_trail(store, oss_bucket_name="dig-bucket", oss_key_prefix="audit")
    writer = DigestWriter(store, signer, wait_s=0.3)  # nothing sequences the log
    engine = _engine(store, storage, writer)
    asyncio.run(engine.run_once())
    store.append(records([event() for _ in range(3)]))
    asyncio.run(engine.run_once())
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and cp.window_end_seq and "has not reached seq" in cp.last_error
    assert _digests(storage, "dig-bucket") == {}

    async def sequencer() -> None:  # the log catches up while the hook waits: it is not blocked
        await asyncio.sleep(0.1)
        while await asyncio.to_thread(sequence, store, signer, lambda: 0):
            pass

    async def both() -> None:
        engine.after_window[0] = DigestWriter(store, signer, wait_s=5)
        for state in next(iter(engine._runs.values())).sinks.values():  # noqa: SLF001
            state.retry_at = 0.0
            state.failures = 0
        await asyncio.gather(engine.run_once(), sequencer())

    asyncio.run(both())
    assert len(_digests(storage, "dig-bucket")) == 1
    cp = store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss")
    assert cp is not None and not cp.window_end_seq and cp.delivered_events == 3


def test_an_organization_trail_delivers_a_digest_per_account(
    backend_store: EventStore, tmp_path: Path
) -> None:
    store, signer = backend_store, generate_signer("digest-org")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("org-bucket")
    org = store.add_organization_member(
        management_account_id=ACCOUNT, member_account_id=OTHER, organization_id="rd-dig", now_ms=1
    )
    add_trail(
        store, oss_bucket_name="org-bucket", oss_key_prefix="audit", is_organization_trail=True,
        organization_id=org.organization_id,
    )  # fmt: skip
    engine = _engine(store, storage, _writer(store, signer))
    asyncio.run(engine.run_once())
    for _ in range(2):
        store.append(records([event(), event(account=OTHER), event(account=OTHER)]))
        asyncio.run(engine.run_once())
    digests = _digests(storage, "org-bucket")
    by_account: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(digests):
        by_account.setdefault(digests[key]["accountId"], []).append(digests[key])
        assert f"/{digests[key]['accountId']}_Actiontrail-Digest_" in key
    assert sorted(by_account) == sorted([ACCOUNT, OTHER])
    assert [d["treeSize"] for d in by_account[ACCOUNT]] == [1, 2]
    assert [d["treeSize"] for d in by_account[OTHER]] == [2, 4]
    for account, chain in by_account.items():
        origin = open_checkpoint(chain[0]["checkpoint"], [signer.verifier]).origin
        assert origin.endswith("/" + account)
    code, report = _verify(signer, tmp_path / "oss" / "org-bucket")  # each account's chain apart
    assert code == 0, report
    (first,) = [k for k in sorted(digests) if f"/{OTHER}_" in k][:1]
    (tmp_path / "oss" / "org-bucket" / first).unlink()
    code, report = _verify(signer, tmp_path / "oss" / "org-bucket")
    assert code == 1 and set(report["problems"]) == {"digest-missing"}


def _wait(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_serve_delivers_digests_that_verify_with_the_logs_public_key(
    backend_url: str, server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real serve (its sequencer, its engine, its key in the data directory) delivering to a
    directory bucket; `trailhouse log public-key` and `trailhouse verify` as an auditor runs them."""
    oss = tmp_path / "oss"
    server = server_factory(db_url=backend_url, oss_dir=str(oss), delivery_window_s=0.3)
    store = server.store
    DirectoryStorage(oss).create_bucket("serve-bucket")
    add_trail(store, oss_bucket_name="serve-bucket", oss_key_prefix="audit")
    _wait(lambda: store.get_checkpoint(account_id=ACCOUNT, trail_name="trail-one", sink="oss") is not None)
    bucket = oss / "serve-bucket"
    for n in (1, 2):
        store.append(records([event() for _ in range(3)]))
        _wait(lambda n=n: len(list(bucket.rglob("*.json.gz"))) == n)  # type: ignore[misc]
    monkeypatch.setenv("TRAILHOUSE_DATA_DIR", server.settings.data_dir)
    key = CliRunner().invoke(app, ["log", "public-key", "--db", backend_url])
    assert key.exit_code == 0, key.stdout
    (tmp_path / "log.vkey").write_text(key.stdout)
    args = ["verify", "--key", str(tmp_path / "log.vkey"), "--delivery", str(bucket),
            "--digests", str(bucket), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["digests"] == 2
    for path in bucket.rglob("Actiontrail_*.gz"):
        path.unlink()
        break
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and set(json.loads(result.stdout)["problems"]) == {"file-missing"}


def test_deliver_once_logs_the_events_and_delivers_their_digest(tmp_path: Path) -> None:
    """`trailhouse trails deliver --once` without serve: it takes the events into the log itself."""
    import os
    import subprocess
    import sys

    from trailhouse.storage import open_store

    db = f"sqlite:///{tmp_path}/t.db"
    env = {**os.environ, "TRAILHOUSE_OSS_DIR": str(tmp_path / "oss"), "TRAILHOUSE_DATA_DIR": str(tmp_path)}
    env.pop("TRAILHOUSE_NATS_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "trailhouse.cli", *args, "--db", db],
            env=env,
            capture_output=True,
            timeout=120,
        )

    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("cli-bucket")
    store = open_store(db)
    add_trail(store, oss_bucket_name="cli-bucket")
    store.close()
    assert cli("trails", "deliver", "--once").returncode == 0
    store = open_store(db)
    store.append(records([event() for _ in range(3)]))
    store.close()
    done = cli("trails", "deliver", "--once", "--json")
    assert done.returncode == 0, done.stderr.decode()
    (digest,) = _digests(storage, "cli-bucket").values()
    assert digest["treeSize"] == 3 and len(digest["logFiles"]) == 1
    vkey = cli("log", "public-key").stdout.decode().strip()
    args = ["verify", "--key", vkey, "--delivery", str(tmp_path / "oss" / "cli-bucket"),
            "--digests", str(tmp_path / "oss" / "cli-bucket")]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0


def test_the_chain_follows_windows_another_node_delivered(backend_store: EventStore, tmp_path: Path) -> None:
    """Node A delivers, node B takes the trail for two windows, A takes it back: A's next digest
    follows B's last one, not the one A remembers."""
    store, signer = backend_store, generate_signer("digest-nodes")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("dig-bucket")
    add_trail(store, oss_bucket_name="dig-bucket", oss_key_prefix="audit")
    node_a, node_b = _writer(store, signer), _writer(store, signer)
    engine = _engine(store, storage, node_a)
    asyncio.run(engine.run_once())
    for writer in (node_a, node_b, node_b, node_a):
        engine.after_window[0] = writer
        _deliver_windows(store, engine, 1, per=2)
    chain = [d for _, d in sorted(_digests(storage, "dig-bucket").items())]
    assert [(d["previousTreeSize"], d["treeSize"]) for d in chain] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert node_a.written == 2 and node_b.written == 2
    code, report = _verify(signer, tmp_path / "oss" / "dig-bucket")
    assert code == 0, report


def test_a_trail_replaced_on_the_same_bucket_starts_its_own_chain(
    backend_store: EventStore, tmp_path: Path
) -> None:
    """A trail deleted and another created on its bucket: two chains of one account's log in one
    bucket, which verify checks apart."""
    store, signer = backend_store, generate_signer("digest-two")
    storage = DirectoryStorage(tmp_path / "oss")
    storage.create_bucket("dig-bucket")
    add_trail(store, oss_bucket_name="dig-bucket", oss_key_prefix="audit")
    engine = _engine(store, storage, _writer(store, signer))
    asyncio.run(engine.run_once())
    _deliver_windows(store, engine, 2)
    assert store.delete_trail(account_id=ACCOUNT, name="trail-one")
    add_trail(store, "trail-two", oss_bucket_name="dig-bucket", oss_key_prefix="audit")
    engine._next_refresh = 0.0  # noqa: SLF001 - see the trails now
    asyncio.run(engine.run_once())
    _deliver_windows(store, engine, 2)
    digests = _digests(storage, "dig-bucket")
    names = sorted(k.rsplit("/", 1)[1].rsplit("_", 1)[0] for k in digests)
    start = f"{ACCOUNT}_Actiontrail-Digest_cn-hangzhou_"
    assert names == [start + "trail-one"] * 2 + [start + "trail-two"] * 2
    second = sorted((d["previousTreeSize"], d["treeSize"]) for k, d in digests.items() if "trail-two" in k)
    assert second == [(0, 12), (12, 16)]
    code, report = _verify(signer, tmp_path / "oss" / "dig-bucket")
    assert code == 0, report
