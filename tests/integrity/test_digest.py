"""Digests over a real store: a chain verifies; a missing or altered file, a broken chain are named."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from tests.integrity.test_log_server import A, make_event
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity.digest import DeliveredFile, build_digest, check_digests
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.note import generate_signer


def _file(store: Any, start: int, end: int, name: str) -> DeliveredFile:
    seqs = store.log_leaf_seqs(account_id=A, start=start, end=end)
    bodies = store.events_by_seq(account_id=A, seqs=seqs)
    events = [bodies[s].body for s in seqs][::2]  # a trail that delivers only some events
    content = gzip.compress(b"[" + b",".join(events) + b"]", mtime=0)
    return DeliveredFile(name, content, events)


def _events(content: bytes) -> list[bytes]:
    return [orjson.dumps(e) for e in orjson.loads(gzip.decompress(content))]


def test_a_digest_chain(backend_store: Any) -> None:
    signer = generate_signer("digest-test")
    digests, files = [], {}
    previous = None
    for window in range(3):
        backend_store.append([event_from_mapping(make_event(window * 30 + i)) for i in range(30)])
        while sequence(backend_store, signer, lambda: 0):
            pass
        f = _file(backend_store, window * 30, window * 30 + 30, f"AliyunLogs/Actiontrail/cn/{window}.gz")
        files[f.path] = f.content
        previous = build_digest(
            backend_store, account_id=A, files=[f], window_start=str(window), window_end=str(window + 1),
            previous=previous,
        )  # fmt: skip
        digests.append(previous)
    verifiers = [signer.verifier]
    assert check_digests(digests, files, verifiers, _events) == []
    broken = dict(files)
    del broken["AliyunLogs/Actiontrail/cn/1.gz"]
    assert [k for k, _ in check_digests(digests, broken, verifiers, _events)] == ["file-missing"]
    broken["AliyunLogs/Actiontrail/cn/1.gz"] = files["AliyunLogs/Actiontrail/cn/2.gz"]
    assert [k for k, _ in check_digests(digests, broken, verifiers, _events)] == ["file-altered"]
    assert [k for k, _ in check_digests([digests[0], digests[2]], files, verifiers, _events)][
        0
    ] == "digest-missing"


def test_verify_a_delivery_folder_and_its_digests(backend_store: Any, tmp_path: Any) -> None:
    """`trailhouse verify --delivery --digests` over the ActionTrail layout; a deleted file and an
    edited event are named."""
    import json

    from typer.testing import CliRunner

    from trailhouse.cli import app
    from trailhouse.service.integrity.digest import digest_bytes
    from trailhouse.service.integrity.verify import split_events

    signer = generate_signer("digest-cli")
    root = tmp_path / "bucket"
    previous = None
    for window in range(2):
        backend_store.append([event_from_mapping(make_event(window * 20 + i)) for i in range(20)])
        while sequence(backend_store, signer, lambda: 0):
            pass
        day = f"cn-hangzhou/2026/11/0{window + 1}"
        rel = f"trail/AliyunLogs/Actiontrail/{day}/Actiontrail_cn-hangzhou_{window}.gz"
        f = _file(backend_store, window * 20, window * 20 + 20, rel)
        assert split_events(gzip.decompress(f.content)) == list(f.events)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(f.content)
        previous = build_digest(
            backend_store,
            account_id=A,
            files=[f],
            window_start="s",
            window_end=str(window),
            previous=previous,
        )
        digest_path = (
            root / f"trail/AliyunLogs/Actiontrail-Digest/cn-hangzhou/2026/11/0{window + 1}/d{window}.json.gz"
        )
        digest_path.parent.mkdir(parents=True, exist_ok=True)
        digest_path.write_bytes(digest_bytes(previous))
    args = ["verify", "--key", signer.verifier.vkey, "--delivery", str(root), "--json",
            "--digests", str(root / "trail/AliyunLogs/Actiontrail-Digest")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout
    first = root / "trail/AliyunLogs/Actiontrail/cn-hangzhou/2026/11/01/Actiontrail_cn-hangzhou_0.gz"
    content = gzip.decompress(first.read_bytes())
    first.write_bytes(gzip.compress(content.replace(b"DescribeInstances", b"DeleteInstances", 1)))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and set(json.loads(result.stdout)["problems"]) == {"file-altered"}
    first.unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and set(json.loads(result.stdout)["problems"]) == {"file-missing"}
