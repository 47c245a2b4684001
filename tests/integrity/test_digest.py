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
