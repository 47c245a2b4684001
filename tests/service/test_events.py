"""service.events: time-window rules, resource-type widening, keyset paging over a real SQLite file."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailhouse.model.event import event_from_mapping
from trailhouse.model.query import Attr, EventFilter, StoredEvent
from trailhouse.model.times import DAY_MS, format_wire_time, parse_wire_time
from trailhouse.service.events import (
    WINDOW_2017,
    EventsPage,
    LookupRejected,
    Problem,
    TimeWindow,
    expand_resource_type,
    lookup_events,
    resolve_window,
    resource_type_candidates,
    window_2020,
)
from trailhouse.service.pagetoken import PageTokens, query_digest
from trailhouse.storage.sqlite import SqliteStore

NOW = parse_wire_time("2024-06-01T12:00:00Z")
HOUR_MS = 3_600_000
ACCOUNT = "1000000000000001"
OTHER = "2000000000000002"
KIND = "LookupEvents/test"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wire(ms: int) -> str:
    return format_wire_time(ms)


@contextmanager
def fresh_store() -> Iterator[SqliteStore]:
    """A real SQLite file per Hypothesis example (tmp_path is per test, not per example)."""
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "trail.db")
        try:
            yield store
        finally:
            store.close()


def event(n: int, time_ms: int, account: str = ACCOUNT, **fields: Any) -> dict[str, Any]:
    return {
        "eventId": f"ev-{account[-1]}-{n}",
        "eventTime": format_wire_time(time_ms)[:-1] + f".{time_ms % 1000:03d}Z",
        "eventName": fields.pop("eventName", "DescribeInstances"),
        "userIdentity": {"accountId": account, "type": "ram-user", "userName": "alice"},
        **fields,
    }


def store_events(store: SqliteStore, events: list[dict[str, Any]]) -> None:
    store.append([event_from_mapping(e) for e in events])


# ------------------------------------------------------------------------------- resolve_window


def _offset(ms: int) -> str:
    return wire(NOW + ms)


# (rules, StartTime, EndTime, expected problem or None). Built from the seed's rules: defaults
# now−7d / now, yyyy-MM-ddTHH:mm:ssZ, last 90 days, span ≤ 30 days (2017) / ≤ 90 days (2020).
WINDOW_CASES: list[tuple[str, str | None, str | None, Problem | None]] = [
    ("2017", None, None, None),
    ("2017", "", "", None),
    ("2017", "2024-05-31", None, Problem.START_TIME_INVALID),
    ("2017", "2024-05-31T00:00:00", None, Problem.START_TIME_INVALID),
    ("2017", "2024-05-31T00:00:00.000Z", None, Problem.START_TIME_INVALID),
    ("2017", "2024-05-31T00:00:00+08:00", None, Problem.START_TIME_INVALID),
    ("2017", "2024-02-30T00:00:00Z", None, Problem.START_TIME_INVALID),
    ("2017", None, "yesterday", Problem.END_TIME_INVALID),
    ("2017", "bad", "bad", Problem.START_TIME_INVALID),
    ("2017", _offset(HOUR_MS), _offset(2 * HOUR_MS), Problem.START_IN_FUTURE),
    ("2017", _offset(HOUR_MS), None, Problem.START_IN_FUTURE),
    ("2017", _offset(-91 * DAY_MS), _offset(-80 * DAY_MS), Problem.START_OUT_OF_DATE),
    ("2017", _offset(-90 * DAY_MS - HOUR_MS), _offset(-70 * DAY_MS), Problem.START_OUT_OF_DATE),
    ("2017", _offset(-90 * DAY_MS), _offset(-70 * DAY_MS), None),
    ("2017", _offset(-10 * DAY_MS), _offset(-10 * DAY_MS), Problem.END_NOT_AFTER_START),
    ("2017", _offset(-5 * DAY_MS), _offset(-6 * DAY_MS), Problem.END_NOT_AFTER_START),
    ("2017", None, _offset(-8 * DAY_MS), Problem.END_NOT_AFTER_START),
    ("2017", _offset(-31 * DAY_MS), None, Problem.SPAN_TOO_LONG),
    ("2017", _offset(-30 * DAY_MS), None, None),
    ("2017", _offset(-30 * DAY_MS - 1000), None, Problem.SPAN_TOO_LONG),
    ("2017", _offset(-40 * DAY_MS), _offset(-20 * DAY_MS), None),
    ("2017", _offset(-40 * DAY_MS), _offset(-5 * DAY_MS), Problem.SPAN_TOO_LONG),
    ("2017", None, _offset(DAY_MS), None),
    ("2020", None, None, None),
    ("2020", _offset(-DAY_MS), None, Problem.TIMES_NOT_PAIRED),
    ("2020", None, _offset(-DAY_MS), Problem.TIMES_NOT_PAIRED),
    ("2020", "nope", None, Problem.START_TIME_INVALID),
    ("2020", _offset(-89 * DAY_MS), _offset(0), None),
    ("2020", _offset(-90 * DAY_MS), _offset(0), None),
    ("2020", _offset(-90 * DAY_MS), _offset(DAY_MS), Problem.SPAN_TOO_LONG),
    ("2020", _offset(-91 * DAY_MS), _offset(-DAY_MS), Problem.START_OUT_OF_DATE),
    ("2020", _offset(-2 * DAY_MS), _offset(-2 * DAY_MS), Problem.END_NOT_AFTER_START),
    ("2020", _offset(HOUR_MS), _offset(3 * HOUR_MS), Problem.START_IN_FUTURE),
    ("2020/30", _offset(-31 * DAY_MS), _offset(0), Problem.SPAN_TOO_LONG),
    ("2020/30", _offset(-30 * DAY_MS), _offset(0), None),
]
RULES = {"2017": WINDOW_2017, "2020": window_2020(), "2020/30": window_2020(30)}


@pytest.mark.parametrize(("rules", "start", "end", "expected"), WINDOW_CASES)
def test_window_table(rules: str, start: str | None, end: str | None, expected: Problem | None) -> None:
    if expected is None:
        window = resolve_window(start, end, now_ms=NOW, rules=RULES[rules])
        assert window.end_ms > window.start_ms
    else:
        with pytest.raises(LookupRejected) as info:
            resolve_window(start, end, now_ms=NOW, rules=RULES[rules])
        assert info.value.kind is expected


def test_window_defaults_and_whole_second_end() -> None:
    window = resolve_window(None, None, now_ms=NOW + 123, rules=WINDOW_2017)
    assert window == TimeWindow(NOW - 7 * DAY_MS, NOW + 999)
    window = resolve_window(wire(NOW - DAY_MS), wire(NOW), now_ms=NOW, rules=window_2020())
    assert window == TimeWindow(NOW - DAY_MS, NOW + 999)


def test_window_messages_name_the_configured_limit() -> None:
    with pytest.raises(LookupRejected, match="exceeds 30 days"):
        resolve_window(wire(NOW - 31 * DAY_MS), None, now_ms=NOW, rules=WINDOW_2017)
    with pytest.raises(LookupRejected, match="exceeds 90 days"):
        resolve_window(wire(NOW - 90 * DAY_MS), wire(NOW + DAY_MS), now_ms=NOW, rules=window_2020())


@PROPERTY
@given(
    version=st.sampled_from(["2017", "2020", "2020/30"]),
    start=st.none() | st.integers(-100 * DAY_MS // 1000, 2 * DAY_MS // 1000),
    end=st.none() | st.integers(-100 * DAY_MS // 1000, 2 * DAY_MS // 1000),
)
def test_window_never_accepts_more_than_documented(version: str, start: int | None, end: int | None) -> None:
    """Any accepted window is within the reach and the span; any refusal names the first broken rule."""
    rules = RULES[version]
    start_text = None if start is None else wire(NOW + start * 1000)
    end_text = None if end is None else wire(NOW + end * 1000)
    start_ms = NOW - 7 * DAY_MS if start is None else NOW + start * 1000
    end_ms = NOW if end is None else NOW + end * 1000
    skew = rules.clock_skew_ms
    if rules.both_or_neither and (start is None) != (end is None):
        expected: Problem | None = Problem.TIMES_NOT_PAIRED
    elif start_ms > NOW + skew:
        expected = Problem.START_IN_FUTURE
    elif start_ms < NOW - 90 * DAY_MS - skew:
        expected = Problem.START_OUT_OF_DATE
    elif end_ms <= start_ms:
        expected = Problem.END_NOT_AFTER_START
    elif end_ms - start_ms > rules.max_span_days * DAY_MS:
        expected = Problem.SPAN_TOO_LONG
    else:
        expected = None
    try:
        window = resolve_window(start_text, end_text, now_ms=NOW, rules=rules)
    except LookupRejected as exc:
        assert exc.kind is expected
        return
    assert expected is None
    assert window.start_ms >= NOW - 90 * DAY_MS - skew
    assert window.start_ms < window.end_ms
    # The filter end covers EndTime's whole second; the span rule is on the seconds given.
    assert window.end_ms - 999 - window.start_ms <= rules.max_span_days * DAY_MS


# ------------------------------------------------------------------------------- resource types


def test_expand_resource_type() -> None:
    known = ["ACS::ECS::Instance", "ACS::RDS::Instance", "ACS::ECS::Disk", "Instance", "ACS::ECS::InstanceX"]
    assert expand_resource_type("Instance", known) == ("Instance", "ACS::ECS::Instance", "ACS::RDS::Instance")
    assert expand_resource_type("ACS::ECS::Instance", known) == ("ACS::ECS::Instance",)
    assert expand_resource_type("Bucket", known) == ("Bucket",)


def test_resource_type_candidates_use_the_accounts_types(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "trail.db")
    try:
        store_events(
            store,
            [
                event(1, NOW - HOUR_MS, resourceType="ACS::ECS::Instance", resourceName="i-1"),
                event(2, NOW - HOUR_MS, account=OTHER, resourceType="ACS::RDS::Instance", resourceName="r-1"),
            ],
        )
        found = resource_type_candidates(store, account_id=ACCOUNT, value="Instance")
        assert found == ("Instance", "ACS::ECS::Instance")
        assert resource_type_candidates(store, account_id=ACCOUNT, value="ACS::X::Instance") == (
            "ACS::X::Instance",
        )
    finally:
        store.close()


# ------------------------------------------------------------------------------------- paging


def page_through(
    store: SqliteStore,
    tokens: PageTokens,
    flt: EventFilter,
    *,
    descending: bool,
    limit: int,
    account: str = ACCOUNT,
    between: Any = None,
) -> list[StoredEvent]:
    digest = query_digest({"q": "all"})
    seen: list[StoredEvent] = []
    token: str | None = None
    pages = 0
    while True:
        page: EventsPage = lookup_events(
            store,
            tokens,
            account_id=account,
            flt=flt,
            descending=descending,
            limit=limit,
            next_token=token,
            token_kind=KIND,
            digest=digest,
        )
        assert len(page.events) <= limit
        seen.extend(page.events)
        pages += 1
        assert pages < 1000
        if page.next_token is None:
            return seen
        # A page that announces a next one is always full: the extra row proved there is more.
        assert len(page.events) == limit
        token = page.next_token
        if between is not None:
            between(pages)


# Few distinct instants, so that many events share a millisecond and order falls to arrival.
instants = st.sampled_from([NOW - k * 1000 - f for k in (0, 1, 60, 3600, 86_400, 500_000) for f in (0, 500)])


@PROPERTY
@given(
    times=st.lists(instants, min_size=0, max_size=90),
    limit=st.integers(1, 50),
    descending=st.booleans(),
)
def test_paging_yields_exactly_the_unpaged_result(times: list[int], limit: int, descending: bool) -> None:
    with fresh_store() as store:
        tokens = PageTokens.for_store(store)
        store_events(store, [event(n, t) for n, t in enumerate(times)])
        flt = EventFilter(start_ms=NOW - 7 * DAY_MS, end_ms=NOW + 999)
        got = page_through(store, tokens, flt, descending=descending, limit=limit)
        # Brute force: arrival n is the order of the batch; ties on time fall to arrival.
        expected = sorted(range(len(times)), key=lambda n: (times[n], n), reverse=descending)
        assert [e.event_id for e in got] == [f"ev-1-{n}" for n in expected]


@PROPERTY
@given(
    times=st.lists(instants, min_size=1, max_size=60),
    later=st.lists(st.lists(instants, min_size=0, max_size=6), min_size=1, max_size=15),
    limit=st.integers(1, 12),
    descending=st.booleans(),
)
def test_events_ingested_between_pages(
    times: list[int], later: list[list[int]], limit: int, descending: bool
) -> None:
    """Nothing returned twice, nothing that existed before the first page skipped, order kept."""
    with fresh_store() as store:
        tokens = PageTokens.for_store(store)
        store_events(store, [event(n, t) for n, t in enumerate(times)])
        counter = iter(range(len(times), 10_000))

        def ingest(page_number: int) -> None:
            # A bounded number of batches: an endless stream of events newer than the cursor
            # would (rightly) keep an oldest-first walk going forever.
            if page_number <= len(later):
                store_events(store, [event(next(counter), t) for t in later[page_number - 1]])

        flt = EventFilter(start_ms=NOW - 7 * DAY_MS, end_ms=NOW + 999)
        got = page_through(store, tokens, flt, descending=descending, limit=limit, between=ingest)
        ids = [e.event_id for e in got]
        assert len(ids) == len(set(ids))
        assert {f"ev-1-{n}" for n in range(len(times))} <= set(ids)
        positions = [e.position for e in got]
        assert positions == sorted(positions, reverse=descending)


def test_window_of_the_first_page_is_kept(tmp_path: Path) -> None:
    """A continued query searches the first page's window even if the caller's filter moved."""
    store = SqliteStore(tmp_path / "trail.db")
    try:
        tokens = PageTokens.for_store(store)
        store_events(store, [event(n, NOW - n * HOUR_MS) for n in range(5)])
        digest = query_digest({})
        first = lookup_events(
            store,
            tokens,
            account_id=ACCOUNT,
            flt=EventFilter(NOW - 10 * HOUR_MS, NOW),
            descending=True,
            limit=2,
            next_token=None,
            token_kind=KIND,
            digest=digest,
        )
        moved = EventFilter(NOW - HOUR_MS, NOW)  # e.g. a default "now − 7 days" an hour later
        rest = lookup_events(
            store,
            tokens,
            account_id=ACCOUNT,
            flt=moved,
            descending=True,
            limit=10,
            next_token=first.next_token,
            token_kind=KIND,
            digest=digest,
        )
        assert [e.event_id for e in first.events + rest.events] == [f"ev-1-{n}" for n in range(5)]
        assert rest.window == first.window == TimeWindow(NOW - 10 * HOUR_MS, NOW)
        assert rest.next_token is None
    finally:
        store.close()


# ------------------------------------------------------------------------------------- tokens


@pytest.fixture
def paged(tmp_path: Path) -> Iterator[tuple[SqliteStore, PageTokens, str]]:
    store = SqliteStore(tmp_path / "trail.db")
    store_events(store, [event(n, NOW - n * 1000) for n in range(3)])
    store_events(store, [event(n, NOW - n * 1000, account=OTHER) for n in range(3)])
    tokens = PageTokens.for_store(store)
    first = lookup_events(
        store,
        tokens,
        account_id=ACCOUNT,
        flt=EventFilter(NOW - DAY_MS, NOW),
        descending=True,
        limit=1,
        next_token=None,
        token_kind=KIND,
        digest="d1",
    )
    assert first.next_token is not None
    yield store, tokens, first.next_token
    store.close()


@pytest.mark.parametrize(
    ("change", "value"),
    [("account", OTHER), ("kind", "LookupEvents/other"), ("digest", "d2"), ("token", "garbage")],
)
def test_token_is_bound(paged: tuple[SqliteStore, PageTokens, str], change: str, value: str) -> None:
    store, tokens, token = paged
    args: dict[str, Any] = {"account_id": ACCOUNT, "token_kind": KIND, "digest": "d1", "next_token": token}
    args[
        {"account": "account_id", "kind": "token_kind", "digest": "digest", "token": "next_token"}[change]
    ] = value
    with pytest.raises(LookupRejected) as info:
        lookup_events(store, tokens, flt=EventFilter(NOW - DAY_MS, NOW), descending=True, limit=1, **args)
    assert info.value.kind is Problem.BAD_TOKEN


def test_tampered_or_foreign_layout_token(paged: tuple[SqliteStore, PageTokens, str]) -> None:
    store, tokens, token = paged
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    # Validly signed, but not a position this service wrote.
    foreign = tokens.issue(kind=KIND, account_id=ACCOUNT, digest="d1", position=[1, "x", 2, 3, 4])
    old_layout = tokens.issue(kind=KIND, account_id=ACCOUNT, digest="d1", position=[0, 1, 2, 3, 4])
    for bad in (flipped, foreign, old_layout, token + "x", "a.b.c"):
        with pytest.raises(LookupRejected) as info:
            lookup_events(
                store,
                tokens,
                account_id=ACCOUNT,
                flt=EventFilter(NOW - DAY_MS, NOW),
                descending=True,
                limit=1,
                next_token=bad,
                token_kind=KIND,
                digest="d1",
            )
        assert info.value.kind is Problem.BAD_TOKEN


def test_token_survives_a_restart(paged: tuple[SqliteStore, PageTokens, str]) -> None:
    store, _, token = paged
    reopened = SqliteStore(store.path)
    try:
        page = lookup_events(
            reopened,
            PageTokens.for_store(reopened),
            account_id=ACCOUNT,
            flt=EventFilter(NOW - DAY_MS, NOW),
            descending=True,
            limit=5,
            next_token=token,
            token_kind=KIND,
            digest="d1",
        )
        assert [e.event_id for e in page.events] == ["ev-1-1", "ev-1-2"]
    finally:
        reopened.close()


def test_limit_must_be_positive(paged: tuple[SqliteStore, PageTokens, str]) -> None:
    store, tokens, _ = paged
    with pytest.raises(LookupRejected) as info:
        lookup_events(
            store,
            tokens,
            account_id=ACCOUNT,
            flt=EventFilter(NOW - DAY_MS, NOW),
            descending=True,
            limit=0,
            next_token=None,
            token_kind=KIND,
            digest="d1",
        )
    assert info.value.kind is Problem.INVALID_PARAMETER


def test_filters_reach_the_store(paged: tuple[SqliteStore, PageTokens, str]) -> None:
    store, tokens, _ = paged
    page = lookup_events(
        store,
        tokens,
        account_id=ACCOUNT,
        flt=EventFilter(NOW - DAY_MS, NOW, equals={Attr.EVENT_ID: ("ev-1-2",)}),
        descending=True,
        limit=5,
        next_token=None,
        token_kind=KIND,
        digest="d3",
    )
    assert [e.event_id for e in page.events] == ["ev-1-2"]
    assert page.next_token is None
