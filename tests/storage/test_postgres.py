"""What only the PostgreSQL backend has: monthly partitions, retention, several nodes at once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from trailhouse.model.credentials import ApiToken, TokenScope
from trailhouse.model.event import EventRecord
from trailhouse.model.query import EventFilter, UsageEntry, UsageKind
from trailhouse.storage.base import EventStore, StoreError, StoreUnavailable
from trailhouse.storage.migrations import migrations_for
from trailhouse.storage.postgres import PostgresStore, TermIdsExhausted, month_bounds, month_of
from trailhouse.storage.sql import (
    EVENT_COLUMNS,
    POSTGRES,
    build_usage,
)
from trailhouse.storage.sql.rows import USAGE_COLUMNS, Placed
from trailhouse.storage.units import build_unit

from .conftest import ACCOUNT, OTHER_ACCOUNT, Backend, at, record
from .test_contract import FILTERS, WHOLE_DAY, dataset, expected, find_all, ids

pytestmark = pytest.mark.postgres

EVERYTHING = EventFilter(-(1 << 62), 1 << 62)


def _in_threads(*targets: Callable[[], Any], timeout: float = 30) -> list[Any]:
    """Run callables at once; their results in order, re-raising the first error."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(i: int, target: Callable[[], Any]) -> None:
        try:
            results[i] = target()
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def _sql(store: PostgresStore, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(store.url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


# -- months and partitions -----------------------------------------------------------------------


def test_month_arithmetic_matches_the_calendar() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for year in (1, 4, 1600, 1899, 1900, 1969, 1970, 2000, 2024, 2100, 9999):
        for month in range(1, 13):
            start_ms = (datetime(year, month, 1, tzinfo=UTC) - epoch) // timedelta(milliseconds=1)
            number = year * 12 + month - 1
            assert month_of(start_ms) == number and month_of(start_ms - 1) == number - 1
            low, high = month_bounds(number)
            assert low == start_ms and month_of(high - 1) == number and month_of(high) == number + 1
    # Beyond what datetime holds (an eventTime with an offset can get there): still contiguous.
    for number in (-13, -1, 0, 9999 * 12 + 11, 10000 * 12):
        low, high = month_bounds(number)
        assert month_bounds(number + 1)[0] == high
        assert month_of(low) == number and month_of(high - 1) == number


def test_partitions_are_created_for_old_future_and_extreme_times(pg_store: PostgresStore) -> None:
    times = {
        "old": "2015-03-10T00:00:00Z",
        "future": "2031-07-31T23:59:59.999Z",
        "year0": "0001-01-01T00:00:00+05:00",  # 0000-12-31T19:00Z
        "year10000": "9999-12-31T23:30:00-05:00",  # 10000-01-01T04:30Z
    }
    assert pg_store.append([record(name, t) for name, t in times.items()]).accepted == [0, 1, 2, 3]
    names = [name for name, _, _ in pg_store.partitions()]
    for expected_name in ("events_2015_03", "events_2031_07", "events_0000_12", "events_10000_01"):
        assert expected_name in names
    for name, t in times.items():
        ms = record(name, t).event_time_ms
        assert ids(find_all(pg_store, EventFilter(ms, ms))) == [name]
    # A lookup reads only the partitions its window overlaps.
    plan = "\n".join(pg_store.explain_find(account_id=ACCOUNT, flt=EventFilter(*month_bounds(2015 * 12 + 2))))
    assert "events_2015_03" in plan and "events_2031_07" not in plan
    assert pg_store.ensure_partitions(at("2015-03-01T00:00:00Z"), at("2015-04-30T00:00:00Z")) == [
        "event_resources_2015_04",
        "events_2015_04",
    ]


def test_drop_expired_partitions(pg_backend: Backend) -> None:
    store = pg_backend.open(retention_days=30)
    assert isinstance(store, PostgresStore)
    now = at("2026-10-20T12:00:00Z")  # cutoff 2026-09-20T12:00Z: July and August are wholly older
    records = [
        record("jul", "2026-07-15T00:00:00Z"),
        record("aug", "2026-08-31T23:59:59.999Z"),
        record("sep", "2026-09-01T00:00:00Z"),  # its month straddles the cutoff: kept
        record("oct", "2026-10-05T00:00:00Z"),
    ]
    store.append(records)
    seqs = {e.event.event_id: e.seq for e in store.read_log(after_seq=0, limit=10)}
    assert store.drop_expired_partitions(at("2026-08-01T00:00:00Z")) == []
    dropped = store.drop_expired_partitions(now)
    assert sorted(dropped) == [
        "event_resources_2026_07",
        "event_resources_2026_08",
        "events_2026_07",
        "events_2026_08",
    ]
    assert ids(find_all(store, EVERYTHING)) == ["sep", "oct"]
    assert store.count_events() == 2
    assert [e.event.event_id for e in store.read_log(after_seq=0, limit=10)] == ["sep", "oct"]
    assert store.events_by_seq(account_id=ACCOUNT, seqs=[seqs["jul"], seqs["aug"]]) == {}
    assert _sql(store, "SELECT count(*) FROM event_ids") == [(2,)]
    # The dedupe forgot the dropped events too: importing one again stores it again, new seq and all.
    assert store.append([records[1], records[2]]).accepted == [0]
    assert store.read_log(after_seq=seqs["oct"], limit=10)[0].event.event_id == "aug"
    # A node that still believes in a month another node dropped recreates it on the next insert.
    other = pg_backend.open(retention_days=30)
    assert isinstance(other, PostgresStore)
    other.append([record("jul2", "2026-07-16T00:00:00Z")])
    assert store.drop_expired_partitions(now) == [
        "event_resources_2026_07",
        "events_2026_07",
        "event_resources_2026_08",
        "events_2026_08",
    ]
    assert other.append([record("jul3", "2026-07-17T00:00:00Z")]).accepted == [0]
    assert ids(find_all(store, EventFilter(*month_bounds(2026 * 12 + 6)))) == ["jul3"]


# -- several writers, several nodes --------------------------------------------------------------


def test_creating_partitions_waits_for_no_transaction_in_flight(pg_backend: Backend) -> None:
    a, b = pg_backend.open(), pg_backend.open()
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    a.append([record("warm")])
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(10)

    a._before_commit = hold
    held = threading.Thread(target=a.append, args=([record("held", "11:00:00")],))
    held.start()
    try:
        assert inside.wait(5)  # a's ingest transaction has inserted and holds the log lock
        started = time.monotonic()
        assert b.ensure_partitions(at("2019-05-01T00:00:00Z"), at("2019-05-01T00:00:00Z")) == [
            "event_resources_2019_05",
            "events_2019_05",
        ]
        assert ids(find_all(b, WHOLE_DAY)) == ["warm"]  # readers are not blocked either
        assert time.monotonic() - started < 5  # had it waited for a, it would take the full 10 s
        # A second writer creates its partition, then queues for the log lock behind a.
        second = threading.Thread(target=b.append, args=([record("queued", "2018-02-02T00:00:00Z")],))
        second.start()
        deadline = time.monotonic() + 5
        while "events_2018_02" not in [name for name, _, _ in b.partitions()]:
            assert time.monotonic() < deadline, "the second writer did not create its partition"
            time.sleep(0.02)
        assert second.is_alive()
    finally:
        release.set()
        held.join(10)
    second.join(10)
    assert [e.event.event_id for e in b.read_log(after_seq=0, limit=10)] == ["warm", "held", "queued"]


def test_concurrent_writers_and_a_tailing_reader_skip_nothing(pg_backend: Backend) -> None:
    """Seqs must become visible in order: a reader following the log by seq never skips a row."""
    writers = [pg_backend.open() for _ in range(4)]
    reader = pg_backend.open()
    done = threading.Event()
    rnd = random.Random(5)

    def jitter() -> None:  # commit after a random pause, so transactions would finish out of order
        time.sleep(rnd.random() * 0.004)

    def write(n: int, store: EventStore) -> None:
        assert isinstance(store, PostgresStore)
        store._before_commit = jitter
        for batch in range(12):
            size = 1 + (batch + n) % 4
            store.append([record(f"w{n}-{batch}-{i}", f"10:{batch:02d}:0{i}") for i in range(size)])

    def tail() -> list[int]:
        seen: list[int] = []
        while True:
            finished = done.is_set()  # read before the page: a page read after it sees every row
            page = reader.read_log(after_seq=seen[-1] if seen else 0, limit=7)
            seen += [e.seq for e in page]
            if not page and finished:
                return seen

    tail_thread_result: list[list[int]] = []
    tailer = threading.Thread(target=lambda: tail_thread_result.append(tail()))
    tailer.start()
    try:
        _in_threads(*[lambda n=n, s=s: write(n, s) for n, s in enumerate(writers)])
    finally:
        done.set()
        tailer.join(30)
    everything = [e.seq for e in reader.read_log(after_seq=0, limit=10_000)]
    assert len(everything) == sum(1 + (b + n) % 4 for n in range(4) for b in range(12))
    assert everything == list(range(1, len(everything) + 1))
    assert tail_thread_result == [everything]


def test_the_same_batch_from_several_nodes_is_stored_once(pg_backend: Backend) -> None:
    nodes = [pg_backend.open() for _ in range(3)]
    # New terms in every event, so the nodes also race to intern the same values.
    batch = [
        record(
            f"same-{i}",
            f"10:00:{i:02d}",
            userIdentity={"userName": f"racer-{i}"},
            eventName=f"Op{i % 7}",
            resourceType="ACS::Race::Thing",
            resourceName=f"r-{i}",
        )
        for i in range(40)
    ]
    orders = [batch, batch[::-1], random.Random(1).sample(batch, len(batch))]
    results = _in_threads(*[lambda s=s, o=o: s.append(o) for s, o in zip(nodes, orders, strict=True)])
    assert sum(len(r.accepted) for r in results) == 40
    assert sum(len(r.duplicates) for r in results) == 80
    assert nodes[0].count_events() == 40  # type: ignore[attr-defined]
    assert sorted(ids(find_all(nodes[1], WHOLE_DAY))) == sorted(r.event_id for r in batch)
    store = nodes[2]
    assert isinstance(store, PostgresStore)
    ((total, distinct),) = _sql(store, "SELECT count(*), count(DISTINCT value) FROM terms")
    assert total == distinct


def test_overlapping_batches_from_many_threads_keep_exactly_one_copy(pg_backend: Backend) -> None:
    nodes = [pg_backend.open() for _ in range(2)]
    pool = [record(f"ov-{i}", f"09:{i % 60:02d}:00") for i in range(60)]
    rnd = random.Random(9)
    batches = [rnd.sample(pool, 15) for _ in range(12)]
    results = _in_threads(*[lambda i=i, b=b: nodes[i % 2].append(b) for i, b in enumerate(batches)])
    stored = {r.event_id for b in batches for r in b}
    assert sum(len(r.accepted) for r in results) == len(stored)
    assert sorted(ids(find_all(nodes[0], WHOLE_DAY))) == sorted(stored)


def test_first_open_by_several_processes_migrates_once(pg_backend: Backend) -> None:
    stores = _in_threads(*[pg_backend.open for _ in range(4)])
    store = stores[0]
    assert isinstance(store, PostgresStore)
    recorded = _sql(store, "SELECT name FROM schema_migrations")
    assert recorded == [(m.name,) for m in migrations_for("postgres")]
    assert store.append([record("one")]).accepted == [0]


# -- plans --------------------------------------------------------------------------------------

#: Filter -> the index (by its columns) that must serve it; None: any index, no sequential scan.
EXPECTED_INDEX: dict[str, str | None] = {
    "window": "account_event_time_seq",
    "everything": "account_event_time_seq",
    "narrow window, inclusive ends": "account_event_time_seq",
    "event name": "account_event_name_event_time_seq",
    "event names": "account_event_name_event_time_seq",
    "name prefix": "account_event_name_event_time_seq",
    "event type": "account_event_type_event_time_seq",
    # Two common values each: no index of their own (migration 0003); the time index and a filter.
    "event rw, every month": None,
    "category": None,
    "service": "account_service_event_time_seq",
    "user": "account_user_name_event_time_seq",
    "user prefix": "account_user_name_event_time_seq",
    "access key": "account_access_key_event_time_seq",
    "source ip": "account_source_ip_event_time_seq",
    "ip prefix": "account_source_ip_event_time_seq",
    "network /24": "account_source_ip_event_time_seq",
    "networks v4 and v6": "account_source_ip_event_time_seq",
    "network /32": "account_source_ip_event_time_seq",
    "role": "account_role_name_event_time_seq",
    "error code": "account_error_code_event_time_seq",
    "sensitive true": "account_sensitive_event_time_seq",
    "sensitive either": None,  # matches nearly everything: the time index and a filter is the better plan
    "event id": "event_ids_pkey",
    "request id": "account_request_key",
    "request id as event id": "account_request_key",  # and event_ids' key: the eventId's entry
    "request id and event id": "event_ids_pkey",
    "resource type": "account_rtype_event_time_seq",
    "resource type prefix": "account_rtype_event_time_seq",
    "resource name": "account_rname_event_time_seq",
    "resource name prefix": "account_rname_event_time_seq",
    "resource type and name": None,
    "resource and event conditions": "account_rname_event_time_seq",
    "failed": None,
    "succeeded": "account_event_time_seq",
    "combined": None,
}


def _uses(plan: str, index: str) -> bool:
    """Whether a plan reads an index: a partition's (named by its columns) or a table's."""
    return f"_{index}_idx" in plan or f" using {index} on " in plan or f"Index Scan on {index}\n" in plan


def test_every_filter_shape_is_index_served(pg_store: PostgresStore) -> None:
    records: list[EventRecord] = dataset()
    pg_store.append(records)
    pg_store.analyze()
    impossible = {"unknown name", "empty window", "inverted window", "sensitive nonsense"}
    assert set(EXPECTED_INDEX) == set(FILTERS) - impossible
    wrong = []
    for name, index in EXPECTED_INDEX.items():
        for descending in (True, False):
            plan = pg_store.explain_find(
                account_id=ACCOUNT, flt=FILTERS[name], descending=descending, force_index=True
            )
            text = "\n".join(plan)
            if "Seq Scan" in text or "Index" not in text or (index and not _uses(text, index)):
                wrong.append(f"{name} (descending={descending}), expected {index}:\n{text}")
    assert not wrong, "\n\n".join(wrong)
    # A window inside one month touches that month's partitions only.
    plan = "\n".join(pg_store.explain_find(account_id=ACCOUNT, flt=WHOLE_DAY))
    assert "_2026_10" in plan and "_2026_09" not in plan and "_2026_11" not in plan


def test_keyset_bound_is_an_index_condition(pg_store: PostgresStore) -> None:
    """The page position is the row comparison (event_time, seq) < (a, b), which PostgreSQL makes
    one bound of the index range (Index Cond); the expanded OR form was only a Filter, and without
    statistics a page could read the whole window (docs/benchmarks.md)."""
    pg_store.append(dataset())
    for name in ("window", "user", "event name", "resource name"):
        for descending, op in ((True, "<"), (False, ">")):
            plan = pg_store.explain_find(account_id=ACCOUNT, flt=FILTERS[name], descending=descending)
            conds = [line for line in plan if "Index Cond" in line and "account =" in line]
            assert conds and f"ROW(event_time, seq) {op} ROW(" in conds[0], "\n".join(plan)


def test_usage_upserts_are_hot(pg_store: PostgresStore) -> None:
    """key_usage's indexes stop at the day of the last use (migration 0012) and its pages have room:
    a batch that uses a key again on the same day updates its rows in place, without new index
    entries."""
    indexes = _sql(
        pg_store,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'key_usage'",
    )
    assert len(indexes) == 3 and not [d for (d,) in indexes if "last_used" in d]
    options = _sql(pg_store, "SELECT reloptions FROM pg_class WHERE oid = 'key_usage'::regclass")
    assert options == [(["fillfactor=70"],)]
    pg_store.append([record("first", "10:00:00")])
    again = [record("again", "11:00:00")]
    units = [build_unit(again)]
    term_ids = pg_store._intern(set(units[0].terms))
    with psycopg.connect(pg_store.url) as conn, conn.transaction():
        # The ingest transaction itself, on a connection of ours: its statistics are this
        # transaction's, so the count is exact and needs no wait for the statistics collector.
        assert pg_store._append_locked(conn, units, term_ids).accepted == [0]
        row = conn.execute(
            "SELECT pg_stat_get_xact_tuples_updated('key_usage'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('key_usage'::regclass)"
        ).fetchone()
    assert row is not None and row[0] > 0 and row[1] == row[0]


def test_usage_of_an_older_store_migrates_in_place(pg_backend: Backend) -> None:
    """A store from before migration 0012 (last_used in the usage indexes) keeps its usage rows and
    answers the same pages after it."""
    store = pg_backend.open()
    assert isinstance(store, PostgresStore)
    store.append(
        [
            record(f"m{i}", f"2026-10-{1 + i % 5:02d}T10:00:0{i % 3}Z", sourceIpAddress=f"10.3.0.{i}")
            for i in range(30)
        ]
    )
    every = {"account_id": ACCOUNT, "access_key_id": "LTAIalice", "kind": UsageKind.IP, "since_ms": 0}

    def pages(s: PostgresStore, service: str | None) -> list[list[UsageEntry]]:
        out, after = [], None
        while True:
            page = s.usage(**every, service_name=service, after=after, limit=4)
            out.append(page)
            if len(page) < 4:
                return out
            after = page[-1].position

    before = {service: pages(store, service) for service in ("Ecs", None)}
    store.close()
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(
            "DROP INDEX key_usage_recent; DROP INDEX key_usage_any_service;"
            " ALTER TABLE key_usage DROP COLUMN last_day, RESET (fillfactor);"
            " CREATE INDEX key_usage_recent ON key_usage"
            " (account, access_key, kind, service, last_used DESC, item, item_type);"
            " CREATE INDEX key_usage_any_service ON key_usage"
            " (account, access_key, kind, last_used DESC, item, item_type, service);"
            " DELETE FROM schema_migrations WHERE name = '0012_key_usage_hot'"
        )
    again = pg_backend.open()
    assert isinstance(again, PostgresStore)
    assert "0012_key_usage_hot" in again.applied_migrations()
    assert {service: pages(again, service) for service in ("Ecs", None)} == before
    assert sum(len(p) for p in before["Ecs"]) == 30


def test_a_cold_term_cache_costs_no_extra_statement(pg_backend: Backend) -> None:
    """A node that has not seen a filter value yet (or a value that is no term) resolves it inside
    the page's statement: same answers as a warm node, index-served plans, no term look-ups."""
    warm = pg_backend.open()
    warm.append(dataset())
    assert isinstance(warm, PostgresStore)
    warm.analyze()
    cold = pg_backend.open()
    assert isinstance(cold, PostgresStore)
    single = [n for n, f in FILTERS.items() if not f.prefixes and not f.networks]
    for name in single:
        cold._term_cache.clear()
        for descending in (True, False):
            got = find_all(cold, FILTERS[name], descending=descending)
            assert ids(got) == ids(find_all(warm, FILTERS[name], descending=descending)), name
    cold._term_cache = {"": 0, ACCOUNT: warm._term_cache[ACCOUNT]}  # the account's id is looked up first
    looked_up: list[object] = []
    cold._lookup_terms = lambda values: looked_up.append(values) or []  # type: ignore[method-assign]
    one_value = [n for n in single if all(len(v) == 1 for v in FILTERS[n].equals.values())]
    for name in one_value:
        find_all(cold, FILTERS[name])
        index = EXPECTED_INDEX.get(name)
        plan = "\n".join(cold.explain_find(account_id=ACCOUNT, flt=FILTERS[name], force_index=True))
        assert "Seq Scan" not in plan and (not index or _uses(plan, index)), f"{name}:\n{plan}"
    assert looked_up == [] and len(cold._term_cache) == 2


def test_an_event_stored_outside_the_log_lock_is_a_duplicate_not_a_second_copy(
    pg_store: PostgresStore,
) -> None:
    """event_ids is written by COPY: a row another writer commits there without the log lock, after
    this batch's look-up, fails the COPY on the primary key; the batch is retried and reports it."""
    rec = record("outside")
    unit = build_unit([rec])
    term_ids = pg_store._intern(set(unit.terms))
    account = term_ids[rec.account_id]
    with psycopg.connect(pg_store.url) as other:
        # The event as a writer that skipped the lock stores it: its row, and its event_ids entry.
        pg_store.ensure_partitions(rec.event_time_ms, rec.event_time_ms)
        pg_store._copy_rows(other, [Placed(unit, [None, *map(term_ids.__getitem__, unit.terms)], [1 << 40])])
        other.execute(
            "INSERT INTO event_ids (event_key, event_time, seq, account, n) VALUES (%s, %s, %s, %s, 0)",
            (rec.event_key, rec.event_time_ms, 1 << 40, account),
        )
        # Uncommitted: the batch's look-up does not see the row, its COPY waits on it.
        (result,) = _in_threads(
            lambda: pg_store.append([rec, record("inside")]),
            lambda: (time.sleep(0.5), other.commit()),
        )[:1]
    assert result.accepted == [1] and result.duplicates == [0]
    assert [e.event.event_id for e in pg_store.read_log(after_seq=0, limit=10)] == ["inside", "outside"]


def test_event_ids_sharing_a_hash_take_the_next_slot(pg_store: PostgresStore) -> None:
    """event_ids keeps hashes only: distinct eventIds of one account on one 64-bit hash are numbered
    0, 1, 2 (``n``), whether they meet in one batch or across batches and months."""
    key = 0x1234
    a, b = replace(record("A"), event_key=key), replace(record("B"), event_key=key)
    c = replace(record("C", "2027-03-01T00:00:00Z"), event_key=key)
    assert pg_store.append([a, b]).accepted == [0, 1]
    assert pg_store.append([c, b, a]).accepted == [0]
    rows = _sql(pg_store, "SELECT n, seq FROM event_ids WHERE event_key = 4660 ORDER BY n")
    assert rows == [(0, 1), (1, 2), (2, 3)]


def test_a_hash_without_its_event_row_is_not_a_match(pg_store: PostgresStore) -> None:
    """A hash hit is compared with the eventId of the event's own row; an entry whose event cannot
    be read matches nothing (the event is stored, never dropped as a duplicate) but keeps its n."""
    rec = record("orphan")
    account = pg_store._intern({rec.account_id})[rec.account_id]
    with psycopg.connect(pg_store.url) as conn:
        conn.execute(
            "INSERT INTO event_ids (event_key, event_time, seq, account, n) VALUES (%s, %s, %s, %s, 0)",
            (rec.event_key, rec.event_time_ms, 1 << 40, account),
        )
    assert pg_store.append([rec]).accepted == [0]
    assert _sql(pg_store, f"SELECT n FROM event_ids WHERE event_key = {rec.event_key} ORDER BY n") == [
        (0,),
        (1,),
    ]
    assert ids(find_all(pg_store, WHOLE_DAY)) == ["orphan"]


def test_term_ids_are_int4_and_their_end_is_refused_clearly(pg_store: PostgresStore) -> None:
    """Migration 0013: term ids are int4. With every id issued, a new value is refused with a
    clear error (nothing stored); values stored already still ingest."""
    pg_store.append([record("before")])
    types = _sql(
        pg_store,
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name IN ('id', 'account', 'rtype', 'rname',"
        " 'event_name', 'access_key', 'item', 'service') AND table_name IN ('terms', 'events',"
        " 'event_resources', 'event_ids', 'key_usage', 'account_resource_types') ORDER BY 1",
    )
    assert {t for _, t in types} == {"integer"}, types
    assert len(types) == 15, types
    _sql(pg_store, "SELECT setval(pg_get_serial_sequence('terms', 'id'), 2147483647)")
    with pytest.raises(TermIdsExhausted, match="2,147,483,647 term ids"):
        pg_store.append([record("new", userIdentity={"userName": "never-seen"})])
    assert pg_store.append([record("again")]).accepted == [0]
    assert ids(find_all(pg_store, WHOLE_DAY)) == ["before", "again"]


def test_a_usage_page_sorts_only_its_newest_days_even_in_a_generic_plan(pg_store: PostgresStore) -> None:
    """The statement bounds the days a page needs itself, so a prepared statement's cached generic
    plan (which knows nothing of how many rows a key has) reads the newest day's rows, not all."""
    pg_store.append(
        [
            record(f"old{i}", "2026-10-01T10:00:00Z", sourceIpAddress=f"10.5.{i // 250}.{i % 250}")
            for i in range(300)
        ]
        + [record(f"new{i}", "2026-10-03T10:00:00Z", sourceIpAddress=f"10.6.0.{i}") for i in range(20)]
    )
    pg_store.analyze()
    query = build_usage(
        account_ref=pg_store._term_cache[ACCOUNT],
        key_ref=pg_store._term_cache["LTAIalice"],
        kind=UsageKind.IP,
        service_ref=pg_store._term_cache["Ecs"],
        since_ms=0,
        after=None,
        limit=6,
        dialect=POSTGRES,
    )
    numbered = query.sql
    for n in range(1, len(query.params) + 1):
        numbered = numbered.replace("%s", f"${n}", 1)
    args = ", ".join(str(p) for p in query.params)
    with psycopg.connect(pg_store.url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE page ({', '.join(['bigint'] * len(query.params))}) AS {numbered}")
        plan = [r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE page ({args})")]
    read = [int(line.rsplit("rows=", 1)[1].split()[0]) for line in plan if " on key_usage " in line]
    assert read and max(read) <= 20, "\n".join(plan)


# -- errors at the edge ---------------------------------------------------------------------------


def test_unreachable_database_is_store_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot open PostgreSQL"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    assert time.monotonic() - started < 5


def test_driver_errors_are_translated(pg_backend: Backend) -> None:
    store = pg_backend.open(pool_size=1)
    assert isinstance(store, PostgresStore)
    store.append([record("a")])
    with store._pool.connection() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(store.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StoreUnavailable):
        store.count_events()
    assert store.count_events() == 1  # the pool replaced the dead connection
    token = ApiToken("tok", b"h", (), True, (TokenScope.READ,), 1)
    store.save_token(token)
    with pytest.raises(StoreError, match="duplicate key"):
        store.save_token(token)  # a unique violation: StoreError, not a driver exception
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_events()


def test_a_store_from_before_0013_migrates_in_place(
    pg_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0013 (int4 term ids, event_ids without the eventId text, fewer event indexes) on a
    store written in the layout before it: the same answers after, and the dedupe still exact,
    two stored eventIds sharing one hash included."""
    import trailhouse.storage.sql.migrate as migrate

    before_0013 = [m for m in migrations_for("postgres") if m.name < "0013"]
    monkeypatch.setattr(migrate, "migrations_for", lambda backend: before_0013)
    old = pg_backend.open()
    assert isinstance(old, PostgresStore)
    unique = {(r.account_id, r.event_id): r for r in reversed(dataset())}  # the first of each id
    records = [*reversed(unique.values())]
    records += [replace(record("twin-a"), event_key=77), replace(record("twin-b"), event_key=77)]
    unit = build_unit(records)
    term_ids = old._intern(set(unit.terms))
    old.ensure_partitions(min(r.event_time_ms for r in records), max(r.event_time_ms for r in records))

    def tid(value: str | None) -> int | None:
        return None if value is None else term_ids[value]

    seqs = list(range(1, len(records) + 1))
    placed = Placed(unit, [None, *map(term_ids.__getitem__, unit.terms)], seqs)
    # The rows the code before 0013 wrote, by plain INSERTs into the old layout.
    with psycopg.connect(old.url) as conn:
        # The rows then also held the eventId and requestId texts (until 0016).
        columns = [*EVENT_COLUMNS[:-1], "event_id", "request_id", EVENT_COLUMNS[-1]]
        for rec, seq, event_row in zip(records, seqs, placed.event_rows(), strict=True):
            request_id = None if rec.request_id is None else rec.request_id.encode()
            conn.execute(
                f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                (*event_row[:-1], rec.event_id.encode(), request_id, event_row[-1]),
            )
            conn.execute(
                "INSERT INTO event_ids (account, event_key, event_id, event_time, seq)"
                " VALUES (%s, %s, %s, %s, %s)",
                (tid(rec.account_id), rec.event_key, rec.event_id.encode(), rec.event_time_ms, seq),
            )
        for row in placed.resource_rows():
            conn.execute("INSERT INTO event_resources VALUES (%s, %s, %s, %s, %s)", row)
        for row in placed.usage_rows():
            conn.execute(
                f"INSERT INTO key_usage ({', '.join(USAGE_COLUMNS)}) VALUES ({', '.join(['%s'] * 12)})", row
            )
        conn.execute("UPDATE log_head SET last_seq = %s", (len(records),))
    old.close()
    monkeypatch.undo()

    store = pg_backend.open()
    assert isinstance(store, PostgresStore)
    assert "0013_slimmer_rows_and_indexes" in store.applied_migrations()
    for name, flt in FILTERS.items():
        for account in (ACCOUNT, OTHER_ACCOUNT):
            want = expected(list(zip(seqs, records, strict=True)), flt, False, account)
            assert ids(find_all(store, flt, account=account)) == want, name
    assert _sql(store, "SELECT n FROM event_ids WHERE event_key = 77 ORDER BY seq") == [(0,), (1,)]
    again = store.append([records[0], records[-1], replace(record("twin-c"), event_key=77)])
    assert again.accepted == [2] and again.duplicates == [0, 1]
    assert _sql(store, "SELECT n FROM event_ids WHERE event_key = 77 ORDER BY seq") == [(0,), (1,), (2,)]
    assert [e.seq for e in store.read_log(after_seq=0, limit=1000)] == [*seqs, len(seqs) + 1]
    entries = store.usage(
        account_id=ACCOUNT,
        access_key_id="LTAIalice",
        kind=UsageKind.IP,
        service_name=None,
        since_ms=0,
        after=None,
        limit=100,
    )
    assert entries and all(e.calls > 0 for e in entries)
