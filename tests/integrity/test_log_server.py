"""The Merkle log on a real server, both backends: checkpoint latency, proofs, tiles, scoping."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import LiveServer
from trailhouse.model.credentials import TokenScope
from trailhouse.service.credentials import create_token
from trailhouse.service.integrity.checkpoint import open_checkpoint
from trailhouse.service.integrity.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion
from trailhouse.service.integrity.tiles import parse_entry_bundle

A, B = "1000000000000001", "2000000000000002"


def make_event(i: int, account: str = A) -> dict[str, Any]:
    return {
        "eventId": f"log-{account}-{i}",
        "eventTime": f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:00:{i % 60:02d}Z",
        "eventName": "DescribeInstances",
        "serviceName": "Ecs",
        "sourceIpAddress": "10.0.0.1",
        "userIdentity": {"accountId": account, "type": "ram-user", "userName": f"u{i % 3}"},
    }


def tokens(server: LiveServer) -> dict[str, dict[str, str]]:
    made = {}
    for name, accounts, scopes in [
        ("ingest", (A, B), (TokenScope.INGEST,)),
        ("a", (A,), (TokenScope.READ,)),
        ("b", (B,), (TokenScope.READ,)),
    ]:
        t = create_token(server.store, account_ids=accounts, all_accounts=False, scopes=scopes)
        made[name] = {"authorization": f"Bearer {t.secret}"}
    return made


def ingest(server: LiveServer, headers: dict[str, str], events: list[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(e) for e in events)
    r = httpx.post(f"{server.url}/api/v1/events", content=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text


def checkpoint(server: LiveServer, headers: dict[str, str], prefix: str = "/api/v1/log") -> tuple[str, Any]:
    r = httpx.get(f"{server.url}{prefix}/checkpoint", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    verifier = server.store and _signer(server).verifier
    return r.text, open_checkpoint(r.text, [verifier])


def _signer(server: LiveServer) -> Any:
    from trailhouse.service.integrity.keys import load_log_signer

    return load_log_signer(server.settings.log_key, server.settings.resolved_data_dir())


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], backend_url: str) -> LiveServer:
    return server_factory(db_url=backend_url)


def test_checkpoint_within_a_second_and_proofs_verify(server: LiveServer) -> None:
    tok = tokens(server)
    events = [make_event(i) for i in range(300)]
    ingest(server, tok["ingest"], events[:200])
    acknowledged = time.monotonic()
    while True:
        _, cp = checkpoint(server, tok["a"])
        if cp.size == 200:
            break
        assert time.monotonic() - acknowledged <= 1.0, "no checkpoint covered the batch within 1 s"
        time.sleep(0.02)
    assert cp.origin.endswith("/" + A)
    first = cp
    ingest(server, tok["ingest"], events[200:] + [make_event(i, B) for i in range(5)])
    deadline = time.monotonic() + 1.0
    while (cp := checkpoint(server, tok["a"])[1]).size != 300:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    # Entries and tiles: a generic tlog-tiles client rebuilds the signed root from them.
    entries: list[bytes] = []
    for path in ("tile/entries/000", "tile/entries/001.p/44"):
        r = httpx.get(f"{server.url}/api/v1/log/{path}", headers=tok["a"], timeout=10)
        assert r.status_code == 200, r.text
        entries += list(parse_entry_bundle(r.content))
    frontier = Frontier()
    frontier.extend(leaf_hash(e) for e in entries)
    assert frontier.root() == cp.root
    level0 = httpx.get(f"{server.url}/api/v1/log/tile/0/001.p/44", headers=tok["a"], timeout=10)
    assert level0.content == b"".join(leaf_hash(e) for e in entries[256:])
    # The same log under the account's own prefix (for clients that cannot add ?account=).
    _, same = checkpoint(server, tok["a"], f"/api/v1/log/accounts/{A}")
    assert same.root == cp.root

    # The export's bytes are the entries: whoever holds an event holds its leaf.
    exported = httpx.get(
        f"{server.url}/api/v1/events",
        params={"format": "ndjson", "start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        headers=tok["a"],
        timeout=30,
    ).content.splitlines()
    assert sorted(exported) == sorted(entries)
    for line in exported[:20]:
        event_id = orjson.loads(line)["eventId"]
        r = httpx.get(f"{server.url}/api/v1/events/{event_id}/proof", headers=tok["a"], timeout=10)
        assert r.status_code == 200, r.text
        proof = r.json()
        root = open_checkpoint(proof["checkpoint"], [_signer(server).verifier]).root
        path = [base64.b64decode(h) for h in proof["inclusionPath"]]
        verify_inclusion(proof["leafIndex"], proof["treeSize"], leaf_hash(line), path, root)

    r = httpx.get(f"{server.url}/api/v1/log/consistency", params={"from": 200, "to": 300}, headers=tok["a"])
    proof = [base64.b64decode(h) for h in r.json()["proof"]]
    verify_consistency(200, 300, first.root, cp.root, proof)

    # Scoped: account B's token sees B's log only, and no proof of A's events.
    _, cp_b = checkpoint(server, tok["b"])
    assert cp_b.size == 5 and cp_b.origin.endswith("/" + B)
    r = httpx.get(f"{server.url}/api/v1/events/log-{A}-1/proof", headers=tok["b"], timeout=10)
    assert r.status_code == 404
    r = httpx.get(f"{server.url}/api/v1/log/accounts/{A}/checkpoint", headers=tok["b"], timeout=10)
    assert r.status_code == 403
    # Bad requests are 4xx, never 500.
    for path, params in [
        ("/api/v1/log/consistency", {"from": 5, "to": 400}),
        ("/api/v1/log/consistency", {"from": "x", "to": 4}),
        ("/api/v1/log/tile/0/x000/001", {}),
        ("/api/v1/log/tile/0/002", {}),
        ("/api/v1/log/checkpoint", {"bogus": 1}),
    ]:
        r = httpx.get(f"{server.url}{path}", params=params, headers=tok["a"], timeout=10)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    assert httpx.get(f"{server.url}/api/v1/log/checkpoint", timeout=10).status_code == 401


def test_sequencing_survives_a_crash_between_steps(backend_store: Any) -> None:
    """The watermark moves with the leaves: a step that fails writes nothing, and a rerun neither
    loses nor doubles an event."""
    from trailhouse.model.event import event_from_mapping
    from trailhouse.service.integrity.log import sequence, sequencing_step
    from trailhouse.service.integrity.note import generate_signer

    signer = generate_signer("test")
    backend_store.append([event_from_mapping(make_event(i)) for i in range(50)])

    def crashing(entries: Any, view: Any) -> Any:
        sequencing_step(signer, lambda: 0)(entries, view)
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        backend_store.log_sequence(crashing, limit=20)
    assert backend_store.log_watermark() == 0 and backend_store.log_head(account_id=A) is None
    while sequence(backend_store, signer, lambda: 0, limit=7):
        pass
    head = backend_store.log_head(account_id=A)
    assert head is not None and head.size == 50
    seqs = backend_store.log_leaf_seqs(account_id=A, start=0, end=50)
    bodies = backend_store.events_by_seq(account_id=A, seqs=seqs)
    frontier = Frontier()
    frontier.extend(leaf_hash(bodies[s].body) for s in sorted(bodies))
    assert frontier.root() == head.root


def test_two_sequencers_at_once_neither_lose_nor_double(backend_store: Any) -> None:
    """Two nodes' sequencers racing on one store: each event is logged once, in seq order."""
    import threading

    from trailhouse.model.event import event_from_mapping
    from trailhouse.service.integrity.log import sequence
    from trailhouse.service.integrity.note import generate_signer

    signer = generate_signer("race")
    backend_store.append([event_from_mapping(make_event(i)) for i in range(400)])

    def run() -> None:
        while backend_store.log_watermark() < 400:
            sequence(backend_store, signer, lambda: 0, limit=13)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    head = backend_store.log_head(account_id=A)
    assert head is not None and head.size == 400
    seqs = backend_store.log_leaf_seqs(account_id=A, start=0, end=400)
    assert seqs == sorted(seqs) and len(set(seqs)) == 400
    bodies = backend_store.events_by_seq(account_id=A, seqs=seqs)
    frontier = Frontier()
    frontier.extend(leaf_hash(bodies[s].body) for s in seqs)
    assert frontier.root() == head.root


def test_one_sequencer_lease_at_a_time(backend_store: Any) -> None:
    assert backend_store.log_claim(owner="node-a", now_ms=1000, lease_ms=5000)
    assert backend_store.log_claim(owner="node-a", now_ms=2000, lease_ms=5000)  # renewed
    assert not backend_store.log_claim(owner="node-b", now_ms=6999, lease_ms=5000)
    assert backend_store.log_claim(owner="node-b", now_ms=7001, lease_ms=5000)  # a lapsed lease
    assert not backend_store.log_claim(owner="node-a", now_ms=8000, lease_ms=5000)


def test_an_event_too_large_for_a_bundle_is_refused_but_provable(backend_store: Any) -> None:
    from trailhouse.model.event import event_from_mapping
    from trailhouse.service.integrity.log import find_event_seq, inclusion, read_tile, sequence
    from trailhouse.service.integrity.note import generate_signer
    from trailhouse.service.integrity.tiles import EntryTooLarge, TileRef

    signer = generate_signer("big")
    big = make_event(1)
    big["requestParameters"] = {"blob": "x" * 70_000}
    backend_store.append([event_from_mapping(make_event(0)), event_from_mapping(big)])
    while sequence(backend_store, signer, lambda: 0):
        pass
    with pytest.raises(EntryTooLarge):
        read_tile(backend_store, backend_store, A, TileRef(None, 0, 2))
    assert len(read_tile(backend_store, backend_store, A, TileRef(0, 0, 2))) == 64
    seq = find_event_seq(backend_store, A, f"log-{A}-1")
    assert seq is not None
    proof = inclusion(backend_store, A, seq)
    assert (proof.leaf_index, proof.tree_size) == (1, 2)
