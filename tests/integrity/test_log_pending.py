"""The queue of leaves not yet logged (``log_pending``, migrations sqlite/0016, postgres/0015):
ingest writes an event's leaf there in the event's own transaction, the sequencer deletes it in the
transaction that logs it. The queue drains; a `kill -9` after ingest or inside the sequencer's
transaction loses nothing and logs nothing twice; a store migrated with events not yet logged
queues them (with no leaf for events stored before there was one) and logs them all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import trailhouse.storage.sql.migrate as migrate
from tests.integrity.test_leaf_tiles import with_queue, without_queue
from tests.integrity.test_log_server import A, B, make_event
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity.log import sequence
from trailhouse.service.integrity.merkle import leaf_hash, root_from_leaves
from trailhouse.service.integrity.note import generate_signer
from trailhouse.storage import open_store
from trailhouse.storage.migrations import migrations_for


def _queued(store: Any) -> list[int]:
    """The seqs of the queue's rows (a row holds a transaction's events, logged in part or not)."""
    with store._guard():
        rows = store._read("SELECT first_seq, last_seq FROM log_pending ORDER BY last_seq")
    return [seq for first, last in rows for seq in range(int(first), int(last) + 1)]


def _logged(store: Any, signer: Any, limit: int = 10_000) -> None:
    while sequence(store, signer, lambda: 0, limit=limit):
        pass


def _check_log(store: Any, sizes: dict[str, int]) -> None:
    """Each account's log is its stored events, each once, in seq order: its size and its root
    hashed here from the bodies."""
    bodies: dict[str, list[bytes]] = {}
    for entry in store.read_log(after_seq=0, limit=100_000):
        bodies.setdefault(entry.account_id, []).append(leaf_hash(entry.event.body))
    assert {a: len(leaves) for a, leaves in bodies.items()} == sizes
    for account, leaves in bodies.items():
        head = store.log_head(account_id=account)
        assert head is not None and head.size == len(leaves)
        assert head.root == root_from_leaves(leaves)


def event_columns(store: Any) -> set[str]:
    """The columns of a store's ``events`` table, on either backend."""
    with store._guard():
        if store.dialect.name == "sqlite":
            return {row[1] for row in store._read("PRAGMA table_info(events)")}
        return {
            row[0]
            for row in store._read(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'events'"
            )
        }


def test_the_queue_holds_what_is_not_yet_logged_and_drains(backend_store: Any) -> None:
    signer = generate_signer("queue")
    assert "leaf" not in event_columns(backend_store)  # the leaf is not kept with the event
    for start in range(0, 40, 10):  # a row a transaction, mixed accounts
        backend_store.append(
            [event_from_mapping(make_event(i, A if i % 3 else B)) for i in range(start, start + 10)]
        )
    assert _queued(backend_store) == list(range(1, 41))
    assert sequence(backend_store, signer, lambda: 0, limit=15) == 15
    # The first row is gone, the second is logged in part and stays.
    assert _queued(backend_store) == list(range(11, 41))
    assert [leaf.seq for leaf in backend_store._read_log_leaves(after_seq=15, limit=100)] == list(
        range(16, 41)
    )
    _logged(backend_store, signer, 9)
    assert _queued(backend_store) == []
    # A batch repeated is stored once and queued once; one account's events make a row too.
    again = backend_store.append(
        [event_from_mapping(make_event(i, A if i % 3 else B)) for i in range(35, 50)]
    )
    assert len(again.duplicates) == 5
    backend_store.append([event_from_mapping(make_event(i, A)) for i in range(100, 105)])
    assert _queued(backend_store) == list(range(41, 56))
    _logged(backend_store, signer, 4)
    assert _queued(backend_store) == []
    _check_log(backend_store, {A: 26 + 7 + 5, B: 14 + 3})


def test_a_gap_in_seqs_wider_than_a_step_does_not_stall_the_sequencer(backend_store: Any) -> None:
    backend_store.append([event_from_mapping(make_event(i)) for i in range(3)])
    with backend_store._guard():  # as a queue row whose seqs come long after the last logged one
        backend_store._write(
            "UPDATE log_pending SET last_seq = last_seq + 50, first_seq = first_seq + 50", ()
        )
    assert [leaf.seq for leaf in backend_store._read_log_leaves(after_seq=0, limit=10)] == [51, 52, 53]


#: Run in a child: the store is opened, events appended, and the process killed (SIGKILL) where
#: ``when`` says, with nothing closed or flushed on the way out.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from contextlib import contextmanager
    from tests.integrity.test_log_server import A, make_event
    from trailhouse.model.event import event_from_mapping
    from trailhouse.service.integrity.log import sequence
    from trailhouse.service.integrity.note import generate_signer
    from trailhouse.storage import open_store

    url, when = sys.argv[1], sys.argv[2]
    store = open_store(url)
    store.append([event_from_mapping(make_event(i, A)) for i in range(60)])
    if when == "in-sequencer":
        # Killed inside the sequencer's transaction, after its last statement (the queue's
        # DELETE), before the COMMIT.
        transaction = store._log_transaction

        @contextmanager
        def killed_before_commit():
            with transaction() as run:
                yield run
                os.kill(os.getpid(), signal.SIGKILL)

        store._log_transaction = killed_before_commit
        sequence(store, generate_signer("child"), lambda: 0, limit=25)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("when", ["after-ingest", "in-sequencer"])
def test_a_kill_after_ingest_or_inside_the_sequencer_loses_and_doubles_nothing(
    backend_url: str, when: str
) -> None:
    child = subprocess.run([sys.executable, "-c", _CHILD, backend_url, when], timeout=120, check=False)
    assert child.returncode == -9
    store: Any = open_store(backend_url)
    try:
        assert store.log_watermark() == 0
        assert _queued(store) == list(range(1, 61))  # the sequencer's DELETE rolled back with it
        _logged(store, generate_signer("after"), 25)
        assert _queued(store) == []
        _check_log(store, {A: 60})
    finally:
        store.close()


def _new_migration(url: str) -> str:
    return "0016_log_pending" if url.startswith("sqlite") else "0015_log_pending"


@pytest.fixture
def unlogged_old_store(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store at the schema before the queue: 90 events with their leaf in events.leaf, 30 of
    them logged, and 20 of the rest stored before there was a leaf column (NULL)."""
    backend = "sqlite" if backend_url.startswith("sqlite") else "postgres"
    before = [m for m in migrations_for(backend) if m.name < _new_migration(backend_url)]
    with monkeypatch.context() as m:
        m.setattr(migrate, "migrations_for", lambda name: before)
        store: Any = open_store(backend_url)
        with_queue(store)  # today's ingest writes to it; the old one wrote events.leaf
        store.append([event_from_mapping(make_event(i, A if i % 4 else B)) for i in range(90)])
        ph = store.dialect.ph
        with store._guard():  # the leaf each row held
            for entry in store.read_log(after_seq=0, limit=100):
                store._write(
                    f"UPDATE events SET leaf = {ph} WHERE seq = {ph}",
                    (leaf_hash(entry.event.body), entry.seq),
                )
        assert sequence(store, generate_signer("old"), lambda: 0, limit=30) == 30
        assert store.log_watermark() == 30
        with store._guard():
            store._write("UPDATE events SET leaf = NULL WHERE seq > 50 AND seq / 3 * 3 = seq", ())
        without_queue(store)
        store.close()
    yield backend_url


def test_a_store_migrated_with_unlogged_events_logs_each_once(unlogged_old_store: str) -> None:
    store: Any = open_store(unlogged_old_store)
    try:
        with store._guard():
            applied = {r[0] for r in store._read("SELECT name FROM schema_migrations")}
            queue = store._read("SELECT last_seq, leaves FROM log_pending ORDER BY last_seq")
        assert _new_migration(unlogged_old_store) in applied
        assert "leaf" not in event_columns(store)
        assert [int(seq) for seq, _ in queue] == list(range(31, 91))
        assert [int(seq) for seq, leaf in queue if leaf is None] == [s for s in range(51, 91) if s % 3 == 0]
        bodies = {e.seq: e.event.body for e in store.read_log(after_seq=30, limit=100)}
        assert [bytes(leaf) for seq, leaf in queue if leaf is not None] == [
            leaf_hash(bodies[int(seq)]) for seq, leaf in queue if leaf is not None
        ]
        _logged(store, generate_signer("new"), 17)
        assert _queued(store) == []
        _check_log(store, {A: 67, B: 23})
    finally:
        store.close()


def _queue_bytes(store: Any) -> int:
    with store._guard():
        return int(store._read("SELECT pg_table_size('log_pending')")[0][0])


def test_the_drained_queue_gives_its_file_back_on_postgres(pg_available: str) -> None:
    """After a bulk load the queue's file held every leaf, and kept that size once drained
    (VACUUM cannot cut it short while new rows land in its pages): the sequencer truncates the
    drained queue, never one that holds a row, and never while ingest holds the table."""
    from tests.conftest import pg_schema_url

    signer = generate_signer("queue")
    with pg_schema_url(pg_available) as url:
        store = open_store(url)
        try:
            store._queue_shrink_bytes = 1  # any size: the test's queue is small
            store._next_queue_shrink = float("inf")  # the sequencer's own look, only when the test says
            for start in range(0, 3000, 500):
                store.append([event_from_mapping(make_event(i, A)) for i in range(start, start + 500)])
            full = _queue_bytes(store)
            assert full > 8192
            # A row still queued: not truncated.
            assert sequence(store, signer, lambda: 0, limit=2900) == 2900
            assert store._shrink_log_queue() is False and _queued(store) == list(range(2501, 3001))
            # Drained, but an ingest transaction holds the table: not truncated, nothing waits long.
            _logged(store, signer)
            with store._pool.connection() as other, other.transaction():
                other.execute("LOCK TABLE log_pending IN ROW EXCLUSIVE MODE")
                assert store._shrink_log_queue() is False
            assert _queue_bytes(store) == full
            # Drained and free: the sequencer's own step gives the file back.
            store._next_queue_shrink = 0.0
            assert sequence(store, signer, lambda: 0) == 0
            assert _queue_bytes(store) <= 8192 < full  # the TOAST index's one page is left
            # The queue works on: new events are queued and logged, each once.
            store.append([event_from_mapping(make_event(i, B)) for i in range(5000, 5010)])
            assert _queued(store) == list(range(3001, 3011))
            _logged(store, signer)
            _check_log(store, {A: 3000, B: 10})
        finally:
            store.close()
