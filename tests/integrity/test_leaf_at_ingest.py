"""The leaf hash ingest stores for each event (migrations sqlite/0011, postgres/0009; in the
``log_pending`` queue since sqlite/0016, postgres/0015): it is the RFC 6962 leaf of the exact
stored body, and the log built from it is the log of the bodies; events stored without one (before
0011/0009) are still sequenced, from their bodies."""

from __future__ import annotations

from typing import Any

from tests.integrity.test_log_server import A, B, make_event
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.merkle import leaf_hash, root_from_leaves
from trailhouse.service.integrity.note import generate_signer


def _sql(url: str, statement: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)


def _roots_of_bodies(store: Any) -> dict[str, bytes]:
    """Each account's tree root, hashed here from the bodies as read_log returns them."""
    bodies: dict[str, list[bytes]] = {}
    for entry in store.read_log(after_seq=0, limit=10_000):
        bodies.setdefault(entry.account_id, []).append(leaf_hash(entry.event.body))
    return {account: root_from_leaves(leaves) for account, leaves in bodies.items()}


def test_the_stored_leaf_is_the_leaf_of_the_stored_body(backend_store: Any) -> None:
    backend_store.append([event_from_mapping(make_event(i, A if i % 3 else B)) for i in range(40)])
    leaves = backend_store._read_log_leaves(after_seq=0, limit=100)
    events = backend_store.read_log(after_seq=0, limit=100)
    assert [leaf.seq for leaf in leaves] == [e.seq for e in events]
    assert [leaf.account_id for leaf in leaves] == [e.account_id for e in events]
    assert [leaf.leaf for leaf in leaves] == [leaf_hash(e.event.body) for e in events]

    signer = generate_signer("leaf-test")
    while sequence(backend_store, signer, lambda: 0, limit=7):  # several steps, tiles resumed
        pass
    for account, root in _roots_of_bodies(backend_store).items():
        assert backend_store.log_head(account_id=account).root == root


def test_events_stored_without_a_leaf_are_hashed_from_their_bodies(
    backend_store: Any, backend_url: str
) -> None:
    backend_store.append([event_from_mapping(make_event(i)) for i in range(25)])
    # As events ingested before the leaf column existed and queued by the migration: no leaf, a
    # queue row each.
    _sql(backend_url, "DELETE FROM log_pending")
    _sql(
        backend_url,
        "INSERT INTO log_pending (last_seq, first_seq, account, leaves) SELECT seq, seq, account, NULL"
        " FROM events",
    )
    leaves = backend_store._read_log_leaves(after_seq=0, limit=100)
    events = backend_store.read_log(after_seq=0, limit=100)
    assert [leaf.leaf for leaf in leaves] == [leaf_hash(e.event.body) for e in events]

    sequence(backend_store, generate_signer("leaf-test"), lambda: 0)
    assert backend_store.log_head(account_id=A).root == _roots_of_bodies(backend_store)[A]
    assert backend_store.log_head(account_id=A).size == 25
