"""The storage contract, run once per backend (``store`` is parametrized over SQLite and PostgreSQL).

Lookups are checked against a brute-force evaluation of the same filter over the records in
Python, so both backends are held to one meaning of every filter, order and page.
"""

from __future__ import annotations

import ipaddress
import random
import string
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailhouse.model.credentials import AccessKey, ApiToken, KeyStatus, TokenScope
from trailhouse.model.event import EventRecord, event_from_mapping
from trailhouse.model.query import Attr, EventFilter, Position, UsageKind
from trailhouse.storage.base import EventStore, build_unit

from .conftest import ACCOUNT, BACKENDS, OTHER_ACCOUNT, Backend, at, open_backend, record

WHOLE_DAY = EventFilter(at("00:00:00"), at("23:59:59") + 999)
EVERYTHING = EventFilter(0, at("2100-01-01T00:00:00Z"))


def ids(events: Sequence[Any]) -> list[str]:
    return [e.event_id for e in events]


def find_all(
    store: EventStore, flt: EventFilter, *, descending: bool = False, account: str = ACCOUNT
) -> list[Any]:
    return store.find_events(account_id=account, flt=flt, after=None, descending=descending, limit=100_000)


# -- append and dedupe ---------------------------------------------------------------------------


def test_append_dedupes_within_and_across_batches(store: EventStore) -> None:
    a, b, c = record("A"), record("B"), record("C")
    first = store.append([a, b, a, c, b])
    assert first.accepted == [0, 1, 3] and first.duplicates == [2, 4]
    again = store.append([c, a])
    assert again.accepted == [] and again.duplicates == [0, 1]
    partial = store.append([record("D"), b, record("E"), record("D")])
    assert partial.accepted == [0, 2] and partial.duplicates == [1, 3]
    assert ids(find_all(store, WHOLE_DAY)) == ["A", "B", "C", "D", "E"]
    assert store.append([]).accepted == []


def test_dedupe_is_per_account_and_exact_on_the_event_id(store: EventStore) -> None:
    mine = record("X")
    theirs = record("X", userIdentity={"accountId": OTHER_ACCOUNT})
    assert store.append([mine, theirs]).accepted == [0, 1]
    # A duplicate is decided by (account, eventId) alone, whatever else differs.
    assert store.append([record("X", "11:00:00", eventName="Other")]).duplicates == [0]
    # Ids that differ only in case or by a suffix are different events.
    assert store.append([record("x"), record("X "), record("X\u0000")]).accepted == [0, 1, 2]
    assert ids(find_all(store, WHOLE_DAY, account=OTHER_ACCOUNT)) == ["X"]


def test_a_request_id_hash_hit_is_checked_against_the_request_id(store: EventStore) -> None:
    """requestIds are found by a 64-bit hash; events whose requestIds share one (forced here)
    must not answer for each other, nor an event with no requestId, nor one whose requestId is
    not a string (kept in the body, not indexed)."""
    a = record("RA", requestId="req-A")
    b = replace(record("RB", requestId="req-B"), request_key=a.request_key)  # a collision
    c = record("RC", requestId=None)
    d = record("RD", requestId=12345)
    e = record("RE", requestId="req-\u00e9\u0000x")
    assert store.append([a, b, c, d, e]).accepted == [0, 1, 2, 3, 4]
    # RB is stored under req-A's hash, so a search for req-B (its own hash) cannot reach it: what
    # matters is that req-A's hash hit does not answer with RB.
    for wanted, found in (("req-A", ["RA"]), ("req-B", []), ("12345", []), ("req-\u00e9\u0000x", ["RE"])):
        assert ids(find_all(store, _window(equals={Attr.REQUEST_ID: (wanted,)}))) == found, wanted
    several = find_all(store, _window(equals={Attr.REQUEST_ID: ("req-A", "req-\u00e9\u0000x", "req-C")}))
    assert sorted(ids(several)) == ["RA", "RE"]


def test_a_request_id_that_is_the_event_id_is_found_through_the_event_id(store: EventStore) -> None:
    """An event whose requestId is its eventId (ActionTrail's own rule) keeps no requestId entry:
    a Request lookup takes it from the eventId's key. That key's other events (a hash shared,
    forced here) must not answer for it, an event whose requestId is another event's eventId must
    still be found, and an eventId is not a requestId."""
    a = record("Q1", "10:00:00", requestId="Q1")
    twin = replace(record("Q2", "11:00:00", requestId="other"), event_key=a.event_key)
    c = record("Q3", "12:00:00", requestId="Q1")
    assert build_unit([a, twin, c]).request_key == [None, twin.request_key, a.request_key]
    assert store.append([a, twin, c]).accepted == [0, 1, 2]
    by_q1 = _window(equals={Attr.REQUEST_ID: ("Q1",)})
    assert ids(find_all(store, by_q1)) == ["Q1", "Q3"]
    assert ids(find_all(store, by_q1, descending=True)) == ["Q3", "Q1"]
    page = store.find_events(account_id=ACCOUNT, flt=by_q1, after=None, descending=True, limit=1)
    assert ids(page) == ["Q3"]
    for value in ("Q2", "Q3", "q1"):  # eventIds whose requestIds differ, and case
        assert ids(find_all(store, _window(equals={Attr.REQUEST_ID: (value,)}))) == [], value
    assert ids(find_all(store, _window(equals={Attr.REQUEST_ID: ("other", "Q1")}))) == ["Q1", "Q2", "Q3"]
    hour = 3_600_000
    assert store.count_by_time(
        account_id=ACCOUNT, flt=by_q1, origin_ms=WHOLE_DAY.start_ms, bucket_ms=hour
    ) == [
        (at("10:00:00"), 1),
        (at("12:00:00"), 1),
    ]
    assert store.count_matching(account_id=ACCOUNT, flt=by_q1, cap=10) == 2
    # Only the account's own events, as for every filter.
    assert find_all(store, by_q1, account=OTHER_ACCOUNT) == []


def test_a_request_id_entry_written_before_that_rule_is_found_once(store: EventStore) -> None:
    """Rows stored before requestIds equal to their eventId lost their index entry keep it; such
    an event is then reached twice (its requestId entry, its eventId key) and must count once."""
    old = record("R1", "10:00:00", requestId="R1")
    unit = build_unit([old])
    store.append_units([msgspec.structs.replace(unit, request_key=[old.request_key])])
    store.append([record("R2", "11:00:00", requestId="R2")])
    flt = _window(equals={Attr.REQUEST_ID: ("R1", "R2")})
    assert ids(find_all(store, flt)) == ["R1", "R2"]
    assert ids(find_all(store, flt, descending=True)) == ["R2", "R1"]
    assert store.count_matching(account_id=ACCOUNT, flt=flt, cap=10) == 2


def test_an_event_id_hash_hit_is_checked_against_the_event_id(store: EventStore) -> None:
    """eventIds are found, and re-sent events recognised, by a 64-bit hash; the rows keep no
    eventId text, so each hit is checked against the body. Events whose eventIds share a hash
    (forced here) must not answer for each other in a lookup, a count or the dedupe; a page whose
    hits are mostly collisions is still filled (PostgreSQL checks the rows after its statement)."""
    a = record("EA", "10:00:00")
    twins = [replace(record(f"EB{i}", f"11:00:0{i}"), event_key=a.event_key) for i in range(3)]
    assert store.append([a, *twins]).accepted == [0, 1, 2, 3]
    # Re-sent: each is its own duplicate, not another's; a new id on the same hash is new.
    assert store.append(
        [twins[1], a, replace(record("EC", "12:00:00"), event_key=a.event_key)]
    ).duplicates == [
        0,
        1,
    ]
    by_id = _window(equals={Attr.EVENT_ID: ("EA",)})
    assert ids(find_all(store, by_id)) == ["EA"]
    # Newest first, one a page: the three newer twins (and EC) come before EA in the walk.
    page = store.find_events(account_id=ACCOUNT, flt=by_id, after=None, descending=True, limit=1)
    assert ids(page) == ["EA"]
    assert (
        ids(find_all(store, _window(equals={Attr.EVENT_ID: ("EB2", "EC", "nope")}))) == []
    )  # not their hash
    assert ids(
        find_all(store, _window(equals={Attr.EVENT_ID: ("EA",), Attr.EVENT_NAME: ("DescribeInstances",)}))
    ) == ["EA"]
    hour = 3_600_000
    assert store.count_by_time(
        account_id=ACCOUNT, flt=by_id, origin_ms=WHOLE_DAY.start_ms, bucket_ms=hour
    ) == [(at("10:00:00"), 1)]
    assert store.count_matching(account_id=ACCOUNT, flt=by_id, cap=10) == 1


def test_a_request_id_page_of_collisions_is_still_filled(store: EventStore) -> None:
    wanted = record("RW", "09:00:00", requestId="req-W")
    others = [
        replace(record(f"RO{i}", f"1{i}:00:00", requestId=f"req-O{i}"), request_key=wanted.request_key)
        for i in range(4)
    ]
    store.append([wanted, *others])
    flt = _window(equals={Attr.REQUEST_ID: ("req-W",)})
    for descending in (True, False):
        page = store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=descending, limit=2)
        assert ids(page) == ["RW"], descending
    hour = 3_600_000
    assert store.count_by_time(account_id=ACCOUNT, flt=flt, origin_ms=WHOLE_DAY.start_ms, bucket_ms=hour) == [
        (at("09:00:00"), 1)
    ]


def test_ids_are_read_from_bodies_whatever_else_they_hold(store: EventStore) -> None:
    """The eventId and requestId come from the body: a number no double holds elsewhere in it, an
    integer eventId (indexed as its text) and escapes must not stop the check."""
    odd = event_from_mapping(
        orjson.loads(
            b'{"eventId":"odd-1","eventTime":"2026-10-05T10:00:00Z","eventName":"Get",'
            b'"requestId":"req-odd","userIdentity":{"accountId":"1234567890123456"},"x":0}'
        ),
        body=b'{"x":1e400,"eventId":"odd-1","eventTime":"2026-10-05T10:00:00Z","eventName":"Get",'
        b'"requestId":"req-odd","big":123456789012345678901234567890,'
        b'"userIdentity":{"accountId":"1234567890123456"}}',
    )
    number = record("ignored", eventId=90210, requestId="req-\u00e9")
    assert store.append([odd, number]).accepted == [0, 1]
    assert store.append([odd, number]).duplicates == [0, 1]
    assert ids(find_all(store, _window(equals={Attr.REQUEST_ID: ("req-odd",)}))) == ["odd-1"]
    assert ids(find_all(store, _window(equals={Attr.EVENT_ID: ("odd-1",)}))) == ["odd-1"]
    assert ids(find_all(store, _window(equals={Attr.EVENT_ID: ("90210",)}))) == ["90210"]
    assert ids(find_all(store, _window(equals={Attr.REQUEST_ID: ("req-\u00e9",)}))) == ["90210"]


def test_terms_hold_any_text(store: EventStore) -> None:
    # NUL (which PostgreSQL text cannot hold), non-BMP characters, the empty string.
    names = ["a\u0000b", "a\u0000c", "\u00e9t\u00e9", "\U0001f600x", "", " "]
    store.append([record(f"t{i}", userIdentity={"userName": n}) for i, n in enumerate(names)])
    for i, name in enumerate(names):
        assert ids(find_all(store, _window(equals={Attr.USER_NAME: (name,)}))) == [f"t{i}"]
    assert ids(find_all(store, _window(prefixes={Attr.USER_NAME: "a\u0000"}))) == ["t0", "t1"]
    assert ids(find_all(store, _window(prefixes={Attr.USER_NAME: "\U0001f600"}))) == ["t3"]


def test_bodies_round_trip_byte_identical(store: EventStore) -> None:
    # A body as a client sent it (spacing, key order, unicode escapes) is kept as is.
    raw = (
        b'{ "eventId":"R1", "eventTime":"2026-10-05T10:00:00.123Z","eventName":"Get\\u00e9",'
        b'"userIdentity":{"accountId":"1234567890123456"},"x":[1.5e300, -0.0, null, {"z":1,"a":2}] }'
    )
    raw_rec = event_from_mapping(orjson.loads(raw), body=raw)
    plain = record("R2", extra={"nested": {"deep": ["\u2603", "\u0000"]}})
    store.append([raw_rec, plain])
    found = {e.event_id: e for e in find_all(store, WHOLE_DAY)}
    assert found["R1"].body == raw and found["R1"].event_time_ms == at("10:00:00") + 123
    assert found["R2"].body == plain.body
    by_seq = store.events_by_seq(account_id=ACCOUNT, seqs=[e.seq for e in found.values()])
    assert {e.event_id: e.body for e in by_seq.values()} == {"R1": raw, "R2": plain.body}
    assert {e.event.body for e in store.read_log(after_seq=0, limit=10)} == {raw, plain.body}


# -- lookups against a brute-force model ----------------------------------------------------------

NAMES = ["DescribeInstances", "DescribeDisks", "CreateInstance", "DeleteBucket", "ConsoleSignin"]
IPS = ["10.0.0.1", "10.0.0.77", "10.0.1.5", "192.168.3.4", "2001:db8::1", "2001:db8:1::9", "ecs.aliyuncs.com"]
RESOURCES: list[dict[str, Any]] = [
    {},
    {"resourceType": "ACS::ECS::Instance", "resourceName": "i-1"},
    {"referencedResources": {"ACS::ECS::Instance": ["i-1", "i-2"], "ACS::ECS::Disk": ["d-1"]}},
    {
        "resourceType": "ACS::OSS::Bucket",
        "resourceName": "logs",
        "referencedResources": {"ACS::OSS::Bucket": ["logs"]},
    },
    {"referencedResources": {"ACS::ECS::Disk": ["d-1", "d-2"]}},
]


def dataset(seed: int = 7, n: int = 160) -> list[EventRecord]:
    """Varied events over DAY (many sharing a second, so seq breaks ties) and the months around it."""
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        if i % 23 == 0:
            time = rnd.choice(["2026-09-30T23:59:59.999Z", "2026-11-01T00:00:00Z", "2026-12-24T08:00:00Z"])
        else:
            time = f"{rnd.choice(['09', '10', '11'])}:{rnd.choice(['00', '30'])}:0{rnd.randrange(3)}"
        role = rnd.random() < 0.2
        identity: dict[str, Any] = {
            "accountId": ACCOUNT if rnd.random() < 0.85 else OTHER_ACCOUNT,
            "type": "assumed-role" if role else "ram-user",
            "userName": "admin-role:session" if role else rnd.choice(["alice", "bob", "carol"]),
        }
        key = rnd.choice(["LTAIalice", "LTAIbob", "STS.token", None])
        if key:
            identity["accessKeyId"] = key
        fields: dict[str, Any] = {
            "eventName": rnd.choice(NAMES),
            "eventType": rnd.choice(["ApiCall", "ConsoleSignin", None]),
            "eventRW": rnd.choice(["Read", "Write", None]),
            "eventCategory": rnd.choice(["Management", "Data", None]),
            "serviceName": rnd.choice(["Ecs", "Oss", "Ram", None]),
            "sourceIpAddress": rnd.choice([*IPS, None]),
            "errorCode": rnd.choice([None, None, None, "NoPermission", "Throttling", ""]),
            "sensitiveAction": rnd.choice([None, True, False, "true", "FALSE"]),
            "requestId": rnd.choice([f"req-{i}", None]),
            "userIdentity": identity,
            **rnd.choice(RESOURCES),
        }
        event_id = f"ev-{i:03d}-{rnd.choice(string.ascii_letters)}"
        if i % 3 == 0 and fields["requestId"]:
            fields["requestId"] = event_id  # as ActionTrail's own events: found through the eventId
        records.append(record(event_id, time, **fields))
    return records


def _matches(rec: EventRecord, flt: EventFilter) -> bool:
    if not flt.start_ms <= rec.event_time_ms <= flt.end_ms:
        return False
    resource_tests = []
    for attr, values in flt.equals.items():
        if attr is Attr.RESOURCE_TYPE:
            resource_tests.append(lambda t, n, v=values: t in v)
        elif attr is Attr.RESOURCE_NAME:
            resource_tests.append(lambda t, n, v=values: n in v)
        elif attr is Attr.SENSITIVE_ACTION:
            flags = {v.lower() for v in values}
            if not flags <= {"true", "false"} or rec.sensitive_action is None:
                return False
            if ("true" if rec.sensitive_action else "false") not in flags:
                return False
        elif _attr_value(rec, attr) not in values:
            return False
    for attr, prefix in flt.prefixes.items():
        if attr is Attr.RESOURCE_TYPE:
            resource_tests.append(lambda t, n, p=prefix: t.startswith(p))
        elif attr is Attr.RESOURCE_NAME:
            resource_tests.append(lambda t, n, p=prefix: n.startswith(p))
        else:
            value = _attr_value(rec, attr)
            if value is None or not value.startswith(prefix):
                return False
    if resource_tests and not any(all(test(t, n) for test in resource_tests) for t, n in rec.resources):
        return False
    if flt.networks:
        try:
            address = ipaddress.ip_address(rec.source_ip or "")
        except ValueError:
            return False
        if not any(address in network for network in flt.networks):
            return False
    return flt.has_error is None or flt.has_error == (rec.error_code is not None)


def _attr_value(rec: EventRecord, attr: Attr) -> str | None:
    value: str | None = getattr(rec, attr.value)  # the record's fields are named like the attributes
    return value


def expected(
    records: list[tuple[int, EventRecord]], flt: EventFilter, descending: bool, account: str
) -> list[str]:
    """The event ids a lookup must return, in (event_time, seq) order."""
    chosen = [
        (r.event_time_ms, seq, r.event_id)
        for seq, r in records
        if r.account_id == account and _matches(r, flt)
    ]
    return [event_id for _, _, event_id in sorted(chosen, reverse=descending)]


def _window(**kw: Any) -> EventFilter:
    return EventFilter(WHOLE_DAY.start_ms, WHOLE_DAY.end_ms, **kw)


def _net(*texts: str) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


FILTERS: dict[str, EventFilter] = {
    "window": WHOLE_DAY,
    "everything": EVERYTHING,
    "narrow window, inclusive ends": EventFilter(at("10:00:00"), at("10:30:01")),
    "empty window": EventFilter(at("12:00:00"), at("13:00:00")),
    "inverted window": EventFilter(at("13:00:00"), at("12:00:00")),
    "event name": _window(equals={Attr.EVENT_NAME: ("DescribeInstances",)}),
    "event names": _window(equals={Attr.EVENT_NAME: ("CreateInstance", "DeleteBucket")}),
    "unknown name": _window(equals={Attr.EVENT_NAME: ("NoSuchEvent",)}),
    "event type": _window(equals={Attr.EVENT_TYPE: ("ConsoleSignin",)}),
    "event rw, every month": EventFilter(0, EVERYTHING.end_ms, equals={Attr.EVENT_RW: ("Write",)}),
    "category": _window(equals={Attr.EVENT_CATEGORY: ("Data",)}),
    "service": _window(equals={Attr.SERVICE_NAME: ("Oss", "Ram")}),
    "user": _window(equals={Attr.USER_NAME: ("bob",)}),
    "access key": _window(equals={Attr.ACCESS_KEY_ID: ("STS.token",)}),
    "source ip": _window(equals={Attr.SOURCE_IP: ("10.0.0.77", "2001:db8::1")}),
    "role": _window(equals={Attr.ROLE_NAME: ("admin-role",)}),
    "error code": _window(equals={Attr.ERROR_CODE: ("NoPermission",)}),
    "sensitive true": _window(equals={Attr.SENSITIVE_ACTION: ("true",)}),
    "sensitive either": _window(equals={Attr.SENSITIVE_ACTION: ("TRUE", "false")}),
    "sensitive nonsense": _window(equals={Attr.SENSITIVE_ACTION: ("maybe",)}),
    "event id": EventFilter(0, EVERYTHING.end_ms, equals={Attr.EVENT_ID: ("ev-005-x", "ev-010-y")}),
    "request id": _window(equals={Attr.REQUEST_ID: ("req-ev-005-x", "req-40", "req-77", "req-ev-010-y")}),
    # Requests that are their event's id, and an eventId that is not its event's requestId.
    "request id as event id": _window(
        equals={Attr.REQUEST_ID: ("ev-012-V", "ev-033-o", "ev-016-m", "req-20")}
    ),
    "request id and event id": EventFilter(
        0, EVERYTHING.end_ms, equals={Attr.REQUEST_ID: ("ev-012-V", "req-20"), Attr.EVENT_ID: ("ev-012-V",)}
    ),
    "resource type": _window(equals={Attr.RESOURCE_TYPE: ("ACS::ECS::Disk",)}),
    "resource name": _window(equals={Attr.RESOURCE_NAME: ("i-1", "logs")}),
    "resource type and name": _window(
        equals={Attr.RESOURCE_TYPE: ("ACS::ECS::Instance",), Attr.RESOURCE_NAME: ("i-2",)}
    ),
    "resource name prefix": _window(prefixes={Attr.RESOURCE_NAME: "d-"}),
    "resource type prefix": _window(prefixes={Attr.RESOURCE_TYPE: "ACS::OSS"}),
    "name prefix": _window(prefixes={Attr.EVENT_NAME: "Describe"}),
    "user prefix": _window(prefixes={Attr.USER_NAME: "ca"}),
    "ip prefix": _window(prefixes={Attr.SOURCE_IP: "10.0."}),
    "network /24": _window(networks=_net("10.0.0.0/24")),
    "networks v4 and v6": _window(networks=_net("10.0.0.0/16", "192.168.0.0/16", "2001:db8::/48")),
    "network /32": _window(networks=_net("10.0.1.5/32")),
    "failed": _window(has_error=True),
    "succeeded": _window(has_error=False),
    "combined": _window(
        equals={Attr.USER_NAME: ("alice", "bob"), Attr.EVENT_RW: ("Read",)},
        prefixes={Attr.EVENT_NAME: "Describe"},
        networks=_net("10.0.0.0/8"),
        has_error=False,
    ),
    "resource and event conditions": _window(
        equals={Attr.RESOURCE_NAME: ("i-1", "d-1"), Attr.SERVICE_NAME: ("Ecs",)}, has_error=False
    ),
}


@dataclass(frozen=True)
class Loaded:
    """A store holding ``dataset()``, shared by the read-only tests of one module and backend."""

    store: EventStore
    records: list[tuple[int, EventRecord]]  # (seq, record)


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    records = dataset()
    # The ids in FILTERS must exist for the test to mean something.
    records[5] = record("ev-005-x", "10:00:00", eventName="DeleteBucket")
    records[10] = record("ev-010-y", "2026-11-01T00:00:00Z")
    with open_backend(request.param, tmp_path_factory.mktemp("loaded"), request) as backend:
        store = backend.open()
        for start in range(0, len(records), 50):  # several batches: seqs keep counting across them
            assert len(store.append(records[start : start + 50]).accepted) == len(records[start : start + 50])
        log = store.read_log(after_seq=0, limit=1000)
        by_id = {(e.account_id, e.event.event_id): e.seq for e in log}
        yield Loaded(store, [(by_id[(r.account_id, r.event_id)], r) for r in records])


@pytest.mark.parametrize("name", list(FILTERS))
def test_lookups_match_the_model(loaded: Loaded, name: str) -> None:
    flt = FILTERS[name]
    for account in (ACCOUNT, OTHER_ACCOUNT):
        for descending in (False, True):
            want = expected(loaded.records, flt, descending, account)
            assert ids(find_all(loaded.store, flt, descending=descending, account=account)) == want
    if name not in ("unknown name", "empty window", "inverted window", "sensitive nonsense"):
        assert expected(loaded.records, flt, False, ACCOUNT), "the filter should match something"


@pytest.mark.parametrize("name", list(FILTERS))
def test_counts_by_time_match_the_model(loaded: Loaded, name: str) -> None:
    flt = FILTERS[name]
    hour = 3_600_000
    for account in (ACCOUNT, OTHER_ACCOUNT):
        times = {r.event_id: r.event_time_ms for _, r in loaded.records if r.account_id == account}
        origin = flt.start_ms - 7 * 60_000  # buckets need not start at the window
        want: dict[int, int] = {}
        for event_id in expected(loaded.records, flt, False, account):
            start = origin + (times[event_id] - origin) // hour * hour
            want[start] = want.get(start, 0) + 1
        got = loaded.store.count_by_time(account_id=account, flt=flt, origin_ms=origin, bucket_ms=hour)
        assert got == sorted(want.items())


def test_counts_by_time_refuse_an_origin_after_the_window(store: EventStore) -> None:
    with pytest.raises(ValueError):
        store.count_by_time(account_id=ACCOUNT, flt=WHOLE_DAY, origin_ms=WHOLE_DAY.start_ms + 1, bucket_ms=10)
    with pytest.raises(ValueError):
        store.count_by_time(account_id=ACCOUNT, flt=WHOLE_DAY, origin_ms=WHOLE_DAY.start_ms, bucket_ms=0)


@pytest.mark.parametrize("name", ["window", "everything", "resource name", "network /24", "succeeded"])
@pytest.mark.parametrize("page_size", [1, 7, 50])
def test_keyset_paging_has_no_gaps_or_repeats(loaded: Loaded, name: str, page_size: int) -> None:
    store, flt = loaded.store, FILTERS[name]
    for descending in (False, True):
        pages: list[str] = []
        after: Position | None = None
        while True:
            page = store.find_events(
                account_id=ACCOUNT, flt=flt, after=after, descending=descending, limit=page_size
            )
            pages += ids(page)
            if len(page) < page_size:
                break
            after = page[-1].position
        assert pages == expected(loaded.records, flt, descending, ACCOUNT)
        streamed = store.iter_events(account_id=ACCOUNT, flt=flt, descending=descending, batch=page_size)
        assert ids(list(streamed)) == pages


def test_ties_in_time_are_ordered_by_arrival(store: EventStore) -> None:
    store.append([record("late", "10:00:00"), record("early", "09:00:00"), record("tie", "10:00:00")])
    store.append([record("tie2", "10:00:00")])
    assert ids(find_all(store, WHOLE_DAY)) == ["early", "late", "tie", "tie2"]
    assert ids(find_all(store, WHOLE_DAY, descending=True)) == ["tie2", "tie", "late", "early"]


def test_unknown_account_sees_nothing(loaded: Loaded) -> None:
    store = loaded.store
    assert find_all(store, EVERYTHING, account="999") == []
    assert store.summarize(account_id="999", start_ms=0, end_ms=EVERYTHING.end_ms).count == 0
    assert store.events_by_seq(account_id="999", seqs=[seq for seq, _ in loaded.records]) == {}


def test_summarize(loaded: Loaded) -> None:
    store = loaded.store
    mine = sorted(r.event_time_ms for _, r in loaded.records if r.account_id == ACCOUNT)
    summary = store.summarize(account_id=ACCOUNT, start_ms=0, end_ms=EVERYTHING.end_ms)
    assert (summary.count, summary.earliest_ms, summary.latest_ms) == (len(mine), mine[0], mine[-1])
    day = [t for t in mine if WHOLE_DAY.start_ms <= t <= WHOLE_DAY.end_ms]
    summary = store.summarize(account_id=ACCOUNT, start_ms=WHOLE_DAY.start_ms, end_ms=WHOLE_DAY.end_ms)
    assert (summary.count, summary.earliest_ms, summary.latest_ms) == (len(day), day[0], day[-1])
    empty = store.summarize(account_id=ACCOUNT, start_ms=at("12:00:00"), end_ms=at("13:00:00"))
    assert (empty.count, empty.earliest_ms, empty.latest_ms) == (0, None, None)


def test_events_by_seq_is_scoped_to_the_account(loaded: Loaded) -> None:
    store, seqs = loaded.store, [seq for seq, _ in loaded.records]
    found = store.events_by_seq(account_id=ACCOUNT, seqs=[*seqs, *seqs[:3], 10**9])
    mine = {seq: r for seq, r in loaded.records if r.account_id == ACCOUNT}
    assert set(found) == set(mine)
    for seq, stored in found.items():
        assert (stored.seq, stored.event_id, stored.event_time_ms, stored.body) == (
            seq,
            mine[seq].event_id,
            mine[seq].event_time_ms,
            mine[seq].body,
        )
    assert store.events_by_seq(account_id=ACCOUNT, seqs=[]) == {}


def test_read_log_in_seq_order(loaded: Loaded) -> None:
    store = loaded.store
    everything = store.read_log(after_seq=0, limit=10_000)
    assert [e.seq for e in everything] == list(range(1, len(loaded.records) + 1))
    assert [(e.account_id, e.event.event_id, e.event.body) for e in everything] == [
        (r.account_id, r.event_id, r.body) for _, r in sorted(loaded.records, key=lambda pair: pair[0])
    ]
    # Followed in small steps from any point, the log yields the same entries.
    followed, last = [], everything[40].seq
    while page := store.read_log(after_seq=last, limit=9):
        followed += page
        last = page[-1].seq
    assert followed == everything[41:]
    assert store.read_log(after_seq=everything[-1].seq, limit=10) == []


# SQLite walks its user/key/IP/role/resource indexes day by day (they lead with the UTC day);
# pages must come out in the one total order whatever days they span, in both directions.
@pytest.mark.parametrize(
    "attr_filter",
    [
        {Attr.USER_NAME: ("bob",)},
        {Attr.SOURCE_IP: ("10.7.7.7",)},
        {Attr.ACCESS_KEY_ID: ("LTAIbob",)},
        {Attr.RESOURCE_NAME: ("i-bob",)},
        {Attr.USER_NAME: ("bob",), Attr.EVENT_NAME: ("StopInstances",)},
    ],
    ids=["user", "ip", "key", "resource", "user+name"],
)
@pytest.mark.parametrize("descending", [False, True], ids=["forward", "backward"])
def test_pages_across_many_days_keep_the_total_order(
    store: EventStore, attr_filter: dict[Attr, tuple[str, ...]], descending: bool
) -> None:
    rnd = random.Random(5)
    bob = {"userName": "bob", "accessKeyId": "LTAIbob"}
    records = []
    for i in range(60):
        day = f"2026-10-{1 + rnd.randrange(20):02d}"
        when = f"{day}T{rnd.choice(['00:00:00', '00:00:01', '12:30:00', '23:59:59'])}Z"
        mine = i % 3 != 0
        extra: dict[str, Any] = {"eventName": "StopInstances" if i % 2 else "StartInstances"}
        if mine:
            extra |= {"userIdentity": bob, "sourceIpAddress": "10.7.7.7", "resourceName": "i-bob"}
        extra |= {"resourceType": "ACS::ECS::Instance"}
        records.append(record(f"d{i:02d}", when, **extra))
    store.append(records)
    flt = EventFilter(at("2026-10-03T12:00:00Z"), at("2026-10-18T23:59:59Z"), equals=attr_filter)
    whole = find_all(store, EVERYTHING)
    expected = [
        e.event_id
        for e in whole
        if flt.start_ms <= e.event_time_ms <= flt.end_ms
        and int(e.event_id[1:]) % 3 != 0
        and (Attr.EVENT_NAME not in attr_filter or int(e.event_id[1:]) % 2)
    ]
    if descending:
        expected.reverse()
    assert len(expected) > 10
    paged: list[str] = []
    after = None
    while True:
        page = store.find_events(account_id=ACCOUNT, flt=flt, after=after, descending=descending, limit=4)
        paged += ids(page)
        if len(page) < 4:
            break
        after = page[-1].position
    assert paged == expected
    assert ids(find_all(store, flt, descending=descending)) == expected


# -- AccessKey usage ------------------------------------------------------------------------------


def _usage(store: EventStore, kind: UsageKind, key: str = "LTAIalice", **kw: Any) -> list[Any]:
    args: dict[str, Any] = {"service_name": None, "since_ms": 0, "after": None, "limit": 100} | kw
    return store.usage(account_id=ACCOUNT, access_key_id=key, kind=kind, **args)


def test_usage_aggregates_and_out_of_order_events(store: EventStore) -> None:
    store.append(
        [
            record(
                "u1",
                "10:00:00",
                sourceIpAddress="10.0.0.1",
                resourceType="ACS::ECS::Instance",
                resourceName="i-1",
            ),
            record(
                "u2", "11:00:00", sourceIpAddress="10.0.0.1", errorCode="NoPermission", eventCategory="Data"
            ),
            record("u3", "10:30:00", sourceIpAddress="10.0.0.2", serviceName="Oss", eventName="GetObject"),
        ]
    )
    # A later batch with an older event: first use moves back, the latest use and its source stay.
    store.append([record("u4", "08:00:00", sourceIpAddress="10.0.0.1", eventCategory="Management")])
    store.append([record("u4", "08:00:00", sourceIpAddress="10.0.0.1")])  # a duplicate counts nothing

    ips = _usage(store, UsageKind.IP)
    assert [(u.item, u.service_name) for u in ips] == [("10.0.0.1", "Ecs"), ("10.0.0.2", "Oss")]
    first = ips[0]
    assert (first.first_used_ms, first.last_used_ms, first.calls, first.failed_calls) == (
        at("08:00:00"),
        at("11:00:00"),
        3,
        1,
    )
    assert first.source == "DataEvent"
    seq_u2 = next(e.seq for e in store.read_log(after_seq=0, limit=10) if e.event.event_id == "u2")
    assert first.last_seq == seq_u2

    products = _usage(store, UsageKind.PRODUCT)
    assert [(u.service_name, u.item, u.calls) for u in products] == [("Ecs", "", 3), ("Oss", "", 1)]
    events = _usage(store, UsageKind.EVENT, service_name="Oss")
    assert [(u.item, u.last_used_ms) for u in events] == [("GetObject", at("10:30:00"))]
    resources = _usage(store, UsageKind.RESOURCE)
    assert [(u.item, u.item_type) for u in resources] == [("i-1", "ACS::ECS::Instance")]
    assert _usage(store, UsageKind.IP, since_ms=at("10:45:00"))[0].item == "10.0.0.1"
    assert len(_usage(store, UsageKind.IP, since_ms=at("10:45:00"))) == 1
    assert _usage(store, UsageKind.IP, service_name="Ram") == []
    assert _usage(store, UsageKind.IP, key="LTAInobody") == []


def test_sts_tokens_are_searchable_but_not_tracked_as_key_usage(store: EventStore) -> None:
    sts = "STS.NUk7exampleTokenId"
    identity = {"type": "assumed-role", "accountId": ACCOUNT, "userName": "ops:s1", "accessKeyId": sts}
    store.append([record("sts1", userIdentity=identity), record("ak1", sourceIpAddress="10.9.9.9")])
    assert _usage(store, UsageKind.IP, key=sts) == [] and _usage(store, UsageKind.PRODUCT, key=sts) == []
    assert [u.item for u in _usage(store, UsageKind.IP)] == ["10.9.9.9"]
    found = store.find_events(
        account_id=ACCOUNT,
        flt=EventFilter(0, at("23:59:59"), equals={Attr.ACCESS_KEY_ID: (sts,)}),
        after=None,
        descending=True,
        limit=10,
    )
    assert [e.event_id for e in found] == ["sts1"]


def test_usage_pages_by_position(store: EventStore) -> None:
    store.append([record(f"p{i}", f"10:00:{i % 3:02d}", sourceIpAddress=f"10.1.0.{i}") for i in range(12)])
    whole = _usage(store, UsageKind.IP)
    assert len(whole) == 12
    assert [u.last_used_ms for u in whole] == sorted((u.last_used_ms for u in whole), reverse=True)
    paged, after = [], None
    while True:
        page = _usage(store, UsageKind.IP, after=after, limit=5)
        paged += page
        if len(page) < 5:
            break
        after = page[-1].position
    assert [u.item for u in paged] == [u.item for u in whole]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), limit=st.integers(1, 9))
def test_usage_pages_across_days_equal_the_reference(store: EventStore, seed: int, limit: int) -> None:
    """Brute force: a key's uses over several days, services and out-of-order batches, walked page
    by page, give each (service, IP) once with its latest use, most recent first, as one query
    does. PostgreSQL orders a page by the day of the last use first (migration 0012)."""
    rnd = random.Random(seed)
    key = f"LTAI{uuid.uuid4().hex}"  # the store outlives the examples: a key of its own each
    day, hour = rnd.choice((3, 4, 9, 20)), rnd.choice((0, 10, 23))
    times = [f"2026-10-{day:02d}T{hour:02d}:00:0{rnd.randint(0, 2)}Z"]  # ties on the last use
    records = [
        record(
            f"{key}-{i}",
            rnd.choice(times + [f"2026-10-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z"]),
            serviceName=rnd.choice(("Ecs", "Oss")),
            sourceIpAddress=f"10.2.0.{rnd.randint(0, 11)}",
            userIdentity={"accessKeyId": key},
        )
        for i in range(rnd.randint(1, 40))
    ]
    rnd.shuffle(records)
    cut = rnd.randint(0, len(records))
    store.append(records[:cut])
    store.append(records[cut:])
    for service in ("Ecs", None):
        latest: dict[tuple[str, str], int] = {}
        for r in records:
            if service in (None, r.service_name):
                item = (r.service_name or "", r.source_ip or "")
                latest[item] = max(latest.get(item, r.event_time_ms), r.event_time_ms)
        whole = _usage(store, UsageKind.IP, key=key, service_name=service, limit=1000)
        assert {(u.service_name, u.item): u.last_used_ms for u in whole} == latest
        assert len(whole) == len(latest)
        assert [u.last_used_ms for u in whole] == sorted(latest.values(), reverse=True)
        paged, after = [], None
        while True:
            page = _usage(store, UsageKind.IP, key=key, service_name=service, after=after, limit=limit)
            paged += page
            if len(page) < limit:
                break
            after = page[-1].position
        assert [(u.service_name, u.item) for u in paged] == [(u.service_name, u.item) for u in whole]


def test_usage_with_details_reads_each_rows_last_event(store: EventStore) -> None:
    store.append([record(f"d{i}", f"10:00:0{i}", sourceIpAddress=f"10.4.0.{i % 3}") for i in range(7)])
    plain = _usage(store, UsageKind.IP, service_name="Ecs")
    detailed = _usage(store, UsageKind.IP, service_name="Ecs", with_details=True)
    assert [replace(u, last_event=None) for u in detailed] == plain and len(plain) == 3
    by_seq = store.events_by_seq(account_id=ACCOUNT, seqs=[u.last_seq for u in plain])
    assert [u.last_event for u in detailed] == [by_seq[u.last_seq].body for u in plain]
    assert all(u.last_event is None for u in plain)
    # Another account's rows never carry this account's events, nor the other way round.
    assert _usage(store, UsageKind.IP, key="LTAInobody", with_details=True) == []


# -- credentials and settings -------------------------------------------------------------------------


def _key(key_id: str, account: str = ACCOUNT, created: int = 1) -> AccessKey:
    return AccessKey(
        key_id,
        account,
        "root",
        b"\x00sealed\xff" + key_id.encode(),
        KeyStatus.ACTIVE,
        ("actiontrail:LookupEvents",),
        created,
    )


def test_access_keys_crud(store: EventStore) -> None:
    store.save_access_key(_key("LTAI2", created=2))
    store.save_access_key(_key("LTAI1", created=1))
    store.save_access_key(AccessKey("LTAI3", OTHER_ACCOUNT, "ops", b"s", KeyStatus.INACTIVE, (), 3))
    assert store.get_access_key("LTAI1") == _key("LTAI1", created=1)
    assert store.get_access_key("nope") is None
    assert [k.access_key_id for k in store.list_access_keys(account_id=ACCOUNT)] == ["LTAI1", "LTAI2"]
    assert [k.access_key_id for k in store.list_all_access_keys()] == ["LTAI1", "LTAI2", "LTAI3"]
    assert store.list_all_access_keys()[2].allowed_actions == ()
    assert store.set_access_key_status("LTAI1", KeyStatus.INACTIVE)
    assert store.get_access_key("LTAI1").status is KeyStatus.INACTIVE  # type: ignore[union-attr]
    assert not store.set_access_key_status("nope", KeyStatus.ACTIVE)
    assert store.delete_access_key("LTAI1") and not store.delete_access_key("LTAI1")
    assert [k.access_key_id for k in store.list_access_keys(account_id=ACCOUNT)] == ["LTAI2"]


def test_tokens_crud(store: EventStore) -> None:
    scopes = (TokenScope.INGEST, TokenScope.READ)
    one = ApiToken("tok-1", b"\x01" * 32, (ACCOUNT, OTHER_ACCOUNT), False, scopes, 1)
    every = ApiToken("tok-2", b"\x02" * 32, (), True, (TokenScope.READ,), 2)
    store.save_token(every)
    store.save_token(one)
    assert store.find_token(b"\x01" * 32) == one
    assert store.find_token(b"\x03" * 32) is None
    assert store.list_tokens() == [one, every]
    assert store.delete_token("tok-1") and not store.delete_token("tok-1")
    assert store.list_tokens() == [every]


def test_meta_get_or_set(store: EventStore) -> None:
    assert store.meta_get_or_set("page_token_key", b"\x00first") == b"\x00first"
    assert store.meta_get_or_set("page_token_key", b"second") == b"\x00first"
    assert store.meta_get_or_set("other", b"x") == b"x"


def test_migrations_are_recorded_and_reopening_is_idempotent(backend: Backend, store: EventStore) -> None:
    applied = store.applied_migrations()  # type: ignore[attr-defined]
    assert applied and applied[0].startswith("0001_")
    store.append([record("kept")])
    store.save_access_key(_key("LTAIkeep"))
    store.close()
    again = backend.open()
    assert again.applied_migrations() == applied  # type: ignore[attr-defined]
    assert ids(find_all(again, WHOLE_DAY)) == ["kept"]
    assert again.get_access_key("LTAIkeep") is not None
    assert again.append([record("kept"), record("new")]).accepted == [1]
    assert [e.seq for e in again.read_log(after_seq=0, limit=10)] == [1, 2]


def test_count_events(store: EventStore) -> None:
    assert store.count_events() == 0  # type: ignore[attr-defined]
    store.append([record("a"), record("b", userIdentity={"accountId": OTHER_ACCOUNT}), record("a")])
    assert store.count_events() == 2  # type: ignore[attr-defined]


# -- property: any valid event round-trips unchanged -----------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_optional_strings = (
    "eventType",
    "eventRW",
    "eventCategory",
    "serviceName",
    "requestId",
    "sourceIpAddress",
    "errorCode",
    "resourceName",
    "resourceType",
    "acsRegion",
)
#: Fields whose type the model checks: extra fields are anything else.
_documented = frozenset(_optional_strings) | {
    "eventId",
    "eventTime",
    "eventName",
    "userIdentity",
    "eventVersion",
    "isGlobal",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "referencedResources",
    "requestParameterJson",
    "errorMessage",
    "userAgent",
    "vpcId",
    "recipientAccountId",
    "eventAttributes",
    "sensitiveAction",
    "apiVersion",
    "eventSource",
}


@st.composite
def any_event(draw: st.DrawFn) -> dict[str, Any]:
    text = st.text(min_size=1, max_size=16)
    # Times within a few months, ms included, so the property does not spend itself creating
    # PostgreSQL partitions.
    month, day = draw(st.sampled_from(["09", "10", "11"])), draw(st.integers(10, 28))
    clock = [draw(st.integers(0, limit)) for limit in (23, 59, 59, 999)]
    body: dict[str, Any] = {
        "eventId": draw(text),
        "eventTime": "2026-{}-{}T{:02d}:{:02d}:{:02d}.{:03d}Z".format(month, day, *clock),
        "eventName": draw(text),
        "userIdentity": {
            "accountId": draw(st.sampled_from([ACCOUNT, "acct\u00e9", "0"])),
            "userName": draw(text),
            "accessKeyId": draw(text),
            "type": "ram-user",
        },
    }
    for name in draw(st.lists(st.sampled_from(_optional_strings), unique=True, max_size=5)):
        body[name] = draw(text)
    extra_names = st.text(max_size=12).filter(lambda k: k not in _documented)
    body.update(draw(st.dictionaries(extra_names, _json, max_size=5)))
    return body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(any_event(), min_size=1, max_size=4))
def test_any_valid_event_round_trips_unchanged(store: EventStore, events: list[dict[str, Any]]) -> None:
    # The store outlives the examples: a fresh id prefix per example keeps them apart, while ids
    # repeated within one example still exercise the in-batch dedupe.
    prefix = uuid.uuid4().hex
    for e in events:
        e["eventId"] = prefix + e["eventId"]
    records = [event_from_mapping(e) for e in events]
    result = store.append(records)
    first: dict[tuple[str, str], int] = {}  # the first of each (account, eventId) is the one kept
    for index, r in enumerate(records):
        first.setdefault((r.account_id, r.event_id), index)
    assert result.accepted == sorted(first.values())
    for index in first.values():
        r = records[index]
        flt = EventFilter(r.event_time_ms, r.event_time_ms, equals={Attr.EVENT_ID: (r.event_id,)})
        (found,) = find_all(store, flt, account=r.account_id)
        assert found.body == r.body and orjson.loads(found.body) == events[index]
        assert found.event_id == r.event_id and found.event_time_ms == r.event_time_ms
        by_name = EventFilter(r.event_time_ms, r.event_time_ms, equals={Attr.EVENT_NAME: (r.event_name,)})
        assert found.seq in {e.seq for e in find_all(store, by_name, account=r.account_id)}


def test_ids_with_a_nul_match_nothing(store: EventStore) -> None:
    # PostgreSQL text cannot hold NUL: a look-up by such an id is an answer (none), never an error.
    assert store.get_access_key("LTAI\x00x") is None
    assert store.list_access_keys(account_id="1\x002") == []
    assert store.set_access_key_status("LTAI\x00x", KeyStatus.INACTIVE) is False
    assert store.delete_access_key("LTAI\x00x") is False
    assert store.delete_token("t\x00") is False
    flt = EventFilter(
        EVERYTHING.start_ms, EVERYTHING.end_ms, equals={Attr.EVENT_NAME: ("Describe\x00Instances",)}
    )
    assert store.find_events(account_id=ACCOUNT, flt=flt, after=None, descending=True, limit=5) == []


def test_a_bounded_term_cache_refills_and_answers_the_same(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The term cache is emptied when it outgrows its bound (memory at 10M events); ids looked up
    again from the terms table must give the same lookups and dedupe."""
    import trailhouse.storage.sql.store as sql_store

    monkeypatch.setattr(sql_store, "TERM_CACHE_MAX", 8)
    for batch in range(6):
        store.append(
            [
                record(f"T{batch}-{i}", sourceIpAddress=f"10.1.{batch}.{i}", userIdentity={"userName": user})
                for i, user in ((i, f"u{i % 3}") for i in range(10))
            ]
        )
        assert len(store._term_cache) <= 8 + 40  # type: ignore[attr-defined]  # the bound plus one batch's terms
    assert store.append([record("T0-0", sourceIpAddress="10.1.0.0")]).duplicates == [0]
    by_ip = find_all(store, replace(WHOLE_DAY, equals={Attr.SOURCE_IP: ("10.1.3.4",)}))
    assert ids(by_ip) == ["T3-4"]
    by_user = find_all(store, replace(WHOLE_DAY, equals={Attr.USER_NAME: ("u1",)}))
    assert sorted(ids(by_user)) == sorted(f"T{b}-{i}" for b in range(6) for i in range(10) if i % 3 == 1)
