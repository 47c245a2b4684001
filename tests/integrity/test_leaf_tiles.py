"""Which event each log leaf is, one row per 256-leaf tile (``log_leaf_tiles``, migrations
sqlite/0015, postgres/0014): the packing, the two readers on both backends, and an older store's
per-event ``log_leaves`` rows converted in place by the migration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trailhouse.storage.sql.migrate as migrate
from tests.integrity.test_log_server import A, B, make_event
from trailhouse.model.event import event_from_mapping
from trailhouse.service.integrity import log
from trailhouse.service.integrity.log import consistency, inclusion, sequence, sequencing_step
from trailhouse.service.integrity.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    memory_range_hash,
)
from trailhouse.service.integrity.note import generate_signer
from trailhouse.service.integrity.tiles import TILE_WIDTH
from trailhouse.storage import StoreError, open_store
from trailhouse.storage.migrations import migrations_for
from trailhouse.storage.sql.leaf_tiles import pack_gaps, unpack_seqs
from trailhouse.storage.sql.merkle_log import _View

GAPS = st.lists(st.one_of(st.integers(1, 130), st.integers(1, 1 << 40)), max_size=300)


@given(st.integers(1, 1 << 40), GAPS)
def test_packed_seqs_come_back_as_they_were(first: int, gaps: list[int]) -> None:
    seqs = [first]
    for gap in gaps:
        seqs.append(seqs[-1] + gap)
    packed = pack_gaps(seqs)
    assert unpack_seqs(first, packed) == seqs
    if all(g <= 128 for g in gaps):
        assert len(packed) == len(gaps)  # a byte per leaf while an account's events are close


def test_seqs_that_do_not_increase_are_refused() -> None:
    with pytest.raises(StoreError, match="increasing"):
        pack_gaps([5, 9, 9])
    with pytest.raises(StoreError, match="increasing"):
        pack_gaps([5, 9, 7])
    with pytest.raises(StoreError, match="inside a gap"):
        unpack_seqs(1, pack_gaps([1, 2, 1000])[:-1])


def _interleaved() -> list[Any]:
    """A and B in runs of uneven length: gaps of 1 to a few hundred seqs in each account's log
    (varints of one and two bytes), and tiles that do not line up with the sequencer's steps."""
    events, a, b = [], 0, 0
    for run in range(12):
        for _ in range(37 * (run % 4) + 5):
            events.append(make_event(a, A))
            a += 1
        for _ in range(150 if run % 3 == 0 else 3):
            events.append(make_event(b, B))
            b += 1
    return [event_from_mapping(e) for e in events]


def _logged(store: Any, signer: Any, limit: int) -> None:
    while sequence(store, signer, lambda: 0, limit=limit):
        pass


def _order(store: Any, records: list[Any]) -> dict[str, list[int]]:
    """Each account's seqs in arrival order: its log's leaves, as the store numbered the events."""
    by_account: dict[str, list[int]] = {}
    for entry in store.read_log(after_seq=0, limit=len(records) + 10):
        by_account.setdefault(entry.account_id, []).append(entry.seq)
    return by_account


def _check_leaves(store: Any, order: dict[str, list[int]]) -> None:
    for account, seqs in order.items():
        other = B if account == A else A
        for index, seq in enumerate(seqs):
            assert store.log_leaf_index(account_id=account, seq=seq) == index
            assert store.log_leaf_index(account_id=other, seq=seq) is None
        n = len(seqs)
        for start, end in [
            (0, n),
            (0, 1),
            (255, 256),
            (250, 520),
            (256, 512),
            (n - 3, n + 5),
            (n, n + 1),
            (7, 7),
        ]:
            assert store.log_leaf_seqs(account_id=account, start=start, end=end) == seqs[start:end], (
                start,
                end,
            )


def test_leaf_index_and_seqs_read_from_tile_rows(backend_store: Any) -> None:
    signer = generate_signer("leaves")
    records = _interleaved()
    for start in range(0, len(records), 333):
        backend_store.append(records[start : start + 333])
        _logged(backend_store, signer, 149)  # steps that end inside tiles: the edge row grows
    order = _order(backend_store, records)
    assert len(order[A]) > 2 * TILE_WIDTH and len(order[B]) > 2 * TILE_WIDTH
    _check_leaves(backend_store, order)
    # An event stored but not yet logged has no leaf index.
    backend_store.append([event_from_mapping(make_event(10_000, A))])
    (late,) = [e.seq for e in backend_store.read_log(after_seq=max(order[B] + order[A]), limit=5)]
    assert backend_store.log_leaf_index(account_id=A, seq=late) is None
    assert backend_store.log_leaf_index(account_id="9999999999999999", seq=late) is None


# -- the migration from one row per leaf -------------------------------------------------------------


def _new_migration(url: str) -> str:
    return "0015_log_leaf_tiles" if url.startswith("sqlite") else "0014_log_leaf_tiles"


def _sequence_before_the_migration(store: Any, signer: Any, limit: int) -> int:
    """One step as the sequencer before the migration wrote it: a log_leaves row per leaf, and
    every full tile's interior, level 0 included (the hashing is today's, which is unchanged)."""
    with store._guard():
        entries = store._read_log_leaves(after_seq=store._log_watermark(), limit=limit)
        if not entries:
            return 0
        done = sequencing_step(signer, lambda: 0)(entries, _View(store, lambda q, p, m: store._read(q, p)))
    ph = store.dialect.ph
    with store._guard(), store._log_transaction() as run:
        refs = {h.account_id: store._term_id(h.account_id) for h in done.heads}
        for account, first, seqs in done.leaves:
            run(
                f"INSERT INTO log_leaves (seq, account, idx) VALUES ({ph}, {ph}, {ph})",
                [(seq, refs[account], first + i) for i, seq in enumerate(seqs)],
                True,
            )
        run(
            "INSERT INTO log_tiles (account, level, idx, hashes, interior)"
            f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}) ON CONFLICT (account, level, idx)"
            " DO UPDATE SET hashes = excluded.hashes, interior = excluded.interior",
            [(refs[a], lv, i, h, done.interiors.get((a, lv, i))) for a, lv, i, h in done.tiles],
            True,
        )
        run(
            "INSERT INTO log_heads (account, size, root, frontier, checkpoint, updated_ms)"
            f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph}) ON CONFLICT (account) DO UPDATE SET"
            " size = excluded.size, root = excluded.root, frontier = excluded.frontier,"
            " checkpoint = excluded.checkpoint, updated_ms = excluded.updated_ms",
            [
                (refs[h.account_id], h.size, h.root, h.frontier, h.checkpoint, h.updated_ms)
                for h in done.heads
            ],
            True,
        )
        run(f"UPDATE log_sequencer SET watermark = {ph} WHERE id = 1", (done.watermark,), False)
    return len(entries)


@pytest.fixture
def old_store(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[Any]]]:
    """A store at the schema before the migration, its log written as that version wrote it."""
    new = _new_migration(backend_url)
    backend = "sqlite" if backend_url.startswith("sqlite") else "postgres"
    before = [m for m in migrations_for(backend) if m.name < new]
    signer = generate_signer("leaves")
    records = _interleaved()
    with monkeypatch.context() as m:
        m.setattr(migrate, "migrations_for", lambda name: before)
        m.setattr(log, "INTERIOR_LEVEL", 0)
        store: Any = open_store(backend_url)
        # Today's ingest writes its leaves to the queue of a later migration (log_pending): it
        # is there while this store is built, and gone (drained) before the migration runs.
        with_queue(store)
        for start in range(0, len(records), 333):
            store.append(records[start : start + 333])
            while _sequence_before_the_migration(store, signer, 149):
                pass
        without_queue(store)
    yield store, records
    store.close()


def with_queue(store: Any) -> None:
    """Give a store at a schema before log_pending (sqlite/0016, postgres/0015) that table, take
    the eventId (and PostgreSQL's requestId) column out of its rows (sqlite/0017, postgres/0016)
    and give SQLite the eventId dedupe tables (sqlite/0018), so that today's ingest can write to it."""
    blob = "BLOB" if store.dialect.name == "sqlite" else "bytea"
    with store._guard():
        store._write(
            f"CREATE TABLE log_pending (last_seq bigint PRIMARY KEY, first_seq bigint, account integer,"
            f" accounts {blob}, leaves {blob})",
            (),
        )
        for column in _ID_COLUMNS[store.dialect.name]:
            store._write(f"ALTER TABLE events DROP COLUMN {column}", ())
        # And the eventId dedupe of sqlite/0018: empty, with every slice merged up to the events
        # stored so far, which is right only because the store holds none yet.
        if store.dialect.name == "sqlite":
            assert not store._read("SELECT 1 FROM events LIMIT 1")
            for statement in _EVENT_KEYS:
                store._write(statement, ())


def without_queue(store: Any) -> None:
    """The schema ``with_queue`` found, for its migrations to run (the id columns come back empty)."""
    blob = "BLOB" if store.dialect.name == "sqlite" else "bytea"
    with store._guard():
        store._write("DROP TABLE log_pending", ())
        for column in _ID_COLUMNS[store.dialect.name]:
            store._write(f"ALTER TABLE events ADD COLUMN {column} {blob}", ())
        if store.dialect.name == "sqlite":  # 0018 fills event_keys from the index events_key
            for table in ("event_keys", "event_keys_recent", "event_keys_state"):
                store._write(f"DROP TABLE {table}", ())


_ID_COLUMNS = {"sqlite": ("event_id",), "postgres": ("event_id", "request_id")}
_EVENT_KEYS = [
    "CREATE TABLE event_keys (account INTEGER, event_key INTEGER, seq INTEGER,"
    " PRIMARY KEY (account, event_key, seq)) WITHOUT ROWID",
    "CREATE TABLE event_keys_recent (slice INTEGER, gen INTEGER, account INTEGER, event_key INTEGER,"
    " seq INTEGER, PRIMARY KEY (slice, gen, account, event_key, seq)) WITHOUT ROWID",
    "CREATE TABLE event_keys_state (slice INTEGER PRIMARY KEY, merged_seq INTEGER NOT NULL)",
    "INSERT INTO event_keys_state WITH RECURSIVE s(n) AS"
    " (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 15)"
    " SELECT n, (SELECT COALESCE(MAX(seq), 0) FROM events) FROM s",
]


def _read(store: Any, query: str) -> list[Any]:
    with store._guard():
        return list(store._read(query))


def test_an_old_stores_leaves_are_converted_in_place(
    old_store: tuple[Any, list[Any]], backend_url: str
) -> None:
    old, records = old_store
    order = _order(old, records)
    heads = {a: old.log_head(account_id=a) for a in (A, B)}
    assert _read(old, "SELECT count(*) FROM log_leaves") == [(len(records),)]
    assert _read(old, "SELECT count(*) FROM log_tiles WHERE level = 0 AND interior IS NOT NULL") != [(0,)]
    old.close()

    store: Any = open_store(backend_url)
    assert _new_migration(backend_url) in {r[0] for r in _read(store, "SELECT name FROM schema_migrations")}
    with pytest.raises(Exception, match="log_leaves"):
        _read(store, "SELECT count(*) FROM log_leaves")
    assert _read(store, "SELECT count(*) FROM log_tiles WHERE level = 0 AND interior IS NOT NULL") == [(0,)]
    _check_leaves(store, order)
    assert {a: store.log_head(account_id=a) for a in (A, B)} == heads
    # Proofs from the converted store are the proofs of the leaves themselves.
    bodies = store.events_by_seq(account_id=A, seqs=order[A])
    leaves = [leaf_hash(bodies[s].body) for s in order[A]]
    memory, n = memory_range_hash(leaves), len(leaves)
    for index in [0, 255, 256, n // 2, n - 1]:
        assert inclusion(store, A, order[A][index]).path == inclusion_proof(index, n, memory)
    assert consistency(store, A, 300, n) == consistency_proof(300, n, memory)
    # The log goes on from the converted rows: the edge tile row grows, then new tiles.
    signer = generate_signer("after")
    more = [event_from_mapping(make_event(20_000 + i, A)) for i in range(300)]
    store.append(more)
    _logged(store, signer, 149)
    _check_leaves(store, _order(store, records + more))
    store.close()


def test_a_damaged_old_store_is_refused_and_left_as_it_was(
    old_store: tuple[Any, list[Any]], backend_url: str
) -> None:
    old, _ = old_store
    with old._guard():
        old._write(f"DELETE FROM log_leaves WHERE idx = 300 AND account = {old._term_id(A)}", ())
    old.close()
    with pytest.raises(StoreError, match="leaf 300 is missing"):
        open_store(backend_url)
    # The migration's transaction was rolled back: the old rows are all still there.
    with old_store_reopened(backend_url) as again:
        assert _read(again, "SELECT count(*) FROM log_leaves") == [(len(_interleaved()) - 1,)]


def old_store_reopened(url: str) -> Any:
    """The store at its old schema again (the migration that failed not applied)."""
    import contextlib

    @contextlib.contextmanager
    def opened() -> Iterator[Any]:
        new = _new_migration(url)
        backend = "sqlite" if url.startswith("sqlite") else "postgres"
        before = [m for m in migrations_for(backend) if m.name < new]
        with pytest.MonkeyPatch.context() as m:
            m.setattr(migrate, "migrations_for", lambda name: before)
            store: Any = open_store(url)
        try:
            yield store
        finally:
            store.close()

    return opened()
