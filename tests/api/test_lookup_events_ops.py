"""LookupEvents handlers (2017-12-04 and 2020-07-06) called directly, over a real SQLite file.

Property tests compare every documented filter, and pairs of them, with a brute-force reference
computed from the raw event dicts; the rest pin response shapes, paging, error codes, token
binding, account isolation, and that every filter shape is served by an index.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailhouse.api.context import Services
from trailhouse.api.rpc.call import Call
from trailhouse.api.rpc.errors import ApiError
from trailhouse.api.rpc.operations.lookup_events import (
    LOOKUP_KEYS_2020,
    PARAMS_2017,
    conditions_2017,
    conditions_2020,
    lookup_events_2017,
    lookup_events_2020,
)
from trailhouse.api.rpc.render import render
from trailhouse.model.credentials import AccessKey, KeyStatus
from trailhouse.model.event import event_from_mapping
from trailhouse.model.event_text import event_from_json
from trailhouse.model.query import Attr, EventFilter
from trailhouse.model.times import DAY_MS, format_wire_time, parse_event_time, parse_wire_time
from trailhouse.service.events import resource_type_candidates
from trailhouse.service.pagetoken import PageTokens
from trailhouse.settings import Settings
from trailhouse.storage.sqlite import SqliteStore

NOW = parse_wire_time("2024-06-01T12:00:00Z")
HOUR_MS = 3_600_000
ACCOUNT_A = "1000000000000001"
ACCOUNT_B = "2000000000000002"
V2017, V2020 = "2017-12-04", "2020-07-06"
Handler = Callable[[Call, Services], dict[str, Any]]
HANDLERS: dict[str, Handler] = {V2017: lookup_events_2017, V2020: lookup_events_2020}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wire(ms: int) -> str:
    return format_wire_time(ms)


def services(store: SqliteStore, config: Settings | None = None) -> Services:
    return Services(settings=config or Settings(), store=store, page_tokens=PageTokens.for_store(store))


def call(version: str, params: Mapping[str, str], account: str = ACCOUNT_A, now_ms: int = NOW) -> Call:
    key = AccessKey(f"LTAI{account[-4:]}", account, "tester", b"", KeyStatus.ACTIVE, (), 0)
    return Call("LookupEvents", version, dict(params), account, key, "req-1", now_ms)


def run(svc: Services, version: str, params: Mapping[str, str], **kw: Any) -> dict[str, Any]:
    return HANDLERS[version](call(version, params, **kw), svc)


def collect(svc: Services, version: str, params: Mapping[str, str], **kw: Any) -> list[dict[str, Any]]:
    """Every event of a query, following NextToken to the end."""
    events: list[dict[str, Any]] = []
    token = None
    for _ in range(1000):
        page = run(svc, version, {**params, **({"NextToken": token} if token else {})}, **kw)
        events += page["Events"]
        token = page.get("NextToken")
        if token is None:
            return events
        assert page["Events"], "a page that announces another one is never empty"
    raise AssertionError("paging did not end")


def error_code(svc: Services, version: str, params: Mapping[str, str], **kw: Any) -> str:
    with pytest.raises(ApiError) as info:
        run(svc, version, params, **kw)
    assert info.value.http_status == 400
    return info.value.code


@contextmanager
def fresh_store() -> Iterator[SqliteStore]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "trail.db")
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "trail.db")
    yield s
    s.close()


def ev(n: int, time_ms: int, account: str = ACCOUNT_A, **fields: Any) -> dict[str, Any]:
    identity = fields.pop("userIdentity", {"type": "ram-user", "userName": "alice"})
    return {
        "eventId": f"ev-{account[-1]}-{n}",
        "eventTime": wire(time_ms)[:-1] + f".{time_ms % 1000:03d}Z",
        "eventName": fields.pop("eventName", "DescribeInstances"),
        "userIdentity": {"accountId": account, **identity},
        **fields,
    }


def put(store: SqliteStore, events: list[dict[str, Any]]) -> None:
    store.append([event_from_mapping(e) for e in events])


# ------------------------------------------------------------------------- brute-force reference

EVENT_NAMES = ["DescribeInstances", "CreateUser", "ConsoleSignin", "PutObject"]
EVENT_TYPES = ["ApiCall", "ConsoleSignin", "AliyunServiceEvent"]
SERVICES = ["Ecs", "Ram", "Oss"]
USERS = ["alice", "bob"]
ROLES = ["RoleA:s1", "RoleA:s2", "RoleB:s1"]
KEYS = ["LTAIkey1", "LTAIkey2", "STS.tmp"]
IPS = ["10.0.0.1", "10.0.0.2", "Internal"]
REQUESTS = ["req-1", "req-2", "req-3"]
TYPES = ["ACS::ECS::Instance", "ACS::RDS::Instance", "ACS::RAM::User", "ACS::ECS::Disk", "Instance"]
NAMES = ["i-1", "i-2", "alice", "d-1"]
# Few instants, so many events share a second (or a millisecond); two lie outside the default window.
INSTANTS = [NOW - k for k in (0, 500, 1000, 60_000, HOUR_MS, DAY_MS, 6 * DAY_MS)] + [
    NOW - 8 * DAY_MS,
    NOW + 30_000,
]


def value_of(event: dict[str, Any], attr: Attr) -> str | None:
    """An event's value for a filter attribute, read straight from the raw dict by its documented name."""
    identity = event["userIdentity"]
    if attr is Attr.ROLE_NAME:
        name = identity.get("userName")
        return name.split(":", 1)[0] if identity.get("type") == "assumed-role" and name else None
    if attr is Attr.SENSITIVE_ACTION:
        flag = event.get("sensitiveAction")
        return None if flag is None else str(flag).lower()
    source: dict[Attr, tuple[dict[str, Any], str]] = {
        Attr.EVENT_ID: (event, "eventId"),
        Attr.REQUEST_ID: (event, "requestId"),
        Attr.EVENT_NAME: (event, "eventName"),
        Attr.EVENT_TYPE: (event, "eventType"),
        Attr.EVENT_RW: (event, "eventRW"),
        Attr.SERVICE_NAME: (event, "serviceName"),
        Attr.SOURCE_IP: (event, "sourceIpAddress"),
        Attr.USER_NAME: (identity, "userName"),
        Attr.ACCESS_KEY_ID: (identity, "accessKeyId"),
    }
    obj, key = source[attr]
    return obj.get(key)


def resource_pairs(event: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    if event.get("resourceType") or event.get("resourceName"):
        pairs.append((event.get("resourceType", ""), event.get("resourceName", "")))
    for rtype, names in event.get("referencedResources", {}).items():
        pairs += [(rtype, n) for n in names]
    return pairs


def type_matches(stored: str, wanted: str, short_names: bool) -> bool:
    return stored == wanted or (short_names and "::" not in wanted and stored.endswith("::" + wanted))


def reference(
    events: list[dict[str, Any]],
    conditions: Mapping[Attr, str],
    *,
    account: str,
    window: tuple[int, int],
    descending: bool,
    short_types: bool,
) -> list[str]:
    """The eventIds a query must return, in order: by time, then by arrival (list position)."""
    found = []
    for arrival, event in enumerate(events):
        if event["userIdentity"]["accountId"] != account:
            continue
        time_ms = parse_event_time(event["eventTime"])
        if not window[0] <= time_ms <= window[1]:
            continue
        plain = {a: v for a, v in conditions.items() if a not in (Attr.RESOURCE_TYPE, Attr.RESOURCE_NAME)}
        if any(value_of(event, a) != v for a, v in plain.items()):
            continue
        rtype, rname = conditions.get(Attr.RESOURCE_TYPE), conditions.get(Attr.RESOURCE_NAME)
        if (rtype or rname) and not any(
            (rtype is None or type_matches(t, rtype, short_types)) and (rname is None or n == rname)
            for t, n in resource_pairs(event)
        ):
            continue
        found.append((time_ms, arrival, event["eventId"]))
    return [event_id for *_, event_id in sorted(found, reverse=descending)]


identities = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("ram-user"), "userName": st.sampled_from(USERS)},
        optional={"accessKeyId": st.sampled_from(KEYS)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("assumed-role"), "userName": st.sampled_from(ROLES)},
        optional={"accessKeyId": st.sampled_from(KEYS)},
    ),
    st.just({"type": "root-account", "userName": "root"}),
)
raw_events = st.fixed_dictionaries(
    {
        "account": st.sampled_from([ACCOUNT_A, ACCOUNT_A, ACCOUNT_B]),
        "time": st.sampled_from(INSTANTS),
        "eventName": st.sampled_from(EVENT_NAMES),
        "userIdentity": identities,
    },
    optional={
        "requestId": st.sampled_from(REQUESTS),
        "eventType": st.sampled_from(EVENT_TYPES),
        "serviceName": st.sampled_from(SERVICES),
        "eventRW": st.sampled_from(["Read", "Write"]),
        "sourceIpAddress": st.sampled_from(IPS),
        "sensitiveAction": st.booleans(),
        "resourceType": st.sampled_from(TYPES),
        "resourceName": st.sampled_from(NAMES),
        "referencedResources": st.dictionaries(
            st.sampled_from(TYPES),
            st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True),
            max_size=2,
        ),
    },
)


def build(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, raw in enumerate(drawn):
        fields = dict(raw)
        account, time_ms = fields.pop("account"), fields.pop("time")
        out.append(ev(n, time_ms, account, **fields))
    return out


datasets = st.lists(raw_events, max_size=30).map(build)

# Candidate values per attribute: mostly ones that occur, plus one that never does.
POOLS: dict[Attr, list[str]] = {
    Attr.EVENT_NAME: EVENT_NAMES,
    Attr.EVENT_TYPE: EVENT_TYPES,
    Attr.SERVICE_NAME: SERVICES,
    Attr.USER_NAME: USERS + ROLES,
    Attr.ACCESS_KEY_ID: KEYS,
    Attr.SOURCE_IP: IPS,
    Attr.REQUEST_ID: REQUESTS,
    Attr.ROLE_NAME: ["RoleA", "RoleB"],
    Attr.EVENT_RW: ["Read", "Write"],
    Attr.SENSITIVE_ACTION: ["true", "false"],
    Attr.RESOURCE_TYPE: TYPES + ["User", "Bucket"],
    Attr.RESOURCE_NAME: NAMES,
}


def pool(attr: Attr, events: list[dict[str, Any]]) -> list[str]:
    if attr is Attr.EVENT_ID:
        return [e["eventId"] for e in events] + ["ev-9-0"]
    if attr in (Attr.EVENT_RW, Attr.SENSITIVE_ACTION):
        return POOLS[attr]  # values outside these are refused, not unmatched
    return POOLS[attr] + ["never-stored"]


# The filter-to-field mappings of the two LookupEvents pages, written out independently of the code
# under test (docs/compatibility.md, "What each filter matches").
SPEC_2017 = {
    "Event": Attr.EVENT_ID,
    "Request": Attr.REQUEST_ID,
    "EventType": Attr.EVENT_TYPE,
    "ServiceName": Attr.SERVICE_NAME,
    "EventName": Attr.EVENT_NAME,
    "User": Attr.USER_NAME,
    "ResourceType": Attr.RESOURCE_TYPE,
    "ResourceName": Attr.RESOURCE_NAME,
    "EventRW": Attr.EVENT_RW,
    "EventAccessKeyId": Attr.ACCESS_KEY_ID,
}
SPEC_2020 = {
    "ServiceName": Attr.SERVICE_NAME,
    "EventName": Attr.EVENT_NAME,
    "User": Attr.USER_NAME,
    "EventId": Attr.EVENT_ID,
    "ResourceType": Attr.RESOURCE_TYPE,
    "ResourceName": Attr.RESOURCE_NAME,
    "EventRW": Attr.EVENT_RW,
    "EventAccessKeyId": Attr.ACCESS_KEY_ID,
    "SensitiveAction": Attr.SENSITIVE_ACTION,
    "SourceIpAddress": Attr.SOURCE_IP,
    "EventType": Attr.EVENT_TYPE,
    "RoleName": Attr.ROLE_NAME,
}
PARAM_2017_OF = {attr: name for name, attr in SPEC_2017.items()}
KEY_2020_OF = {attr: key for key, attr in SPEC_2020.items()}


def test_parameter_tables_match_the_spec() -> None:
    assert dict(PARAMS_2017) == SPEC_2017
    assert dict(LOOKUP_KEYS_2020) == SPEC_2020


DEFAULT_WINDOW = (NOW - 7 * DAY_MS, NOW + 999)


def check_query(
    svc: Services,
    events: list[dict[str, Any]],
    version: str,
    conditions: dict[Attr, str],
    descending: bool,
    max_results: int,
) -> None:
    if version == V2017:
        params = {PARAM_2017_OF[a]: v for a, v in conditions.items()}
    else:
        params = {}
        for n, (a, v) in enumerate(conditions.items(), start=1):
            params[f"LookupAttribute.{n}.Key"] = KEY_2020_OF[a]
            params[f"LookupAttribute.{n}.Value"] = v
        params["Direction"] = "BACKWARD" if descending else "FORWARD"
    params["MaxResults"] = str(max_results)
    got = [e["eventId"] for e in collect(svc, version, params)]
    want = reference(
        events,
        conditions,
        account=ACCOUNT_A,
        window=DEFAULT_WINDOW,
        descending=descending,
        short_types=version == V2017,
    )
    assert got == want, (version, conditions)


@PROPERTY
@given(events=datasets, data=st.data())
def test_every_filter_and_pair_matches_reference(events: list[dict[str, Any]], data: st.DataObject) -> None:
    with fresh_store() as store:
        put(store, events)
        svc = services(store)
        max_results = data.draw(st.integers(1, 50), label="MaxResults")
        keys_2020 = list(SPEC_2020.values())
        attrs_2017 = list(SPEC_2017.values())
        for version, attrs in ((V2020, keys_2020), (V2017, attrs_2017)):
            descending = version == V2017 or data.draw(st.booleans(), label="descending")
            for attr in attrs:
                value = data.draw(st.sampled_from(pool(attr, events)), label=f"{version} {attr}")
                check_query(svc, events, version, {attr: value}, descending, max_results)
            for _ in range(4):
                pair = data.draw(st.lists(st.sampled_from(attrs), min_size=2, max_size=2, unique=True))
                conditions = {a: data.draw(st.sampled_from(pool(a, events))) for a in pair}
                check_query(svc, events, version, conditions, descending, max_results)


@PROPERTY
@given(events=datasets, max_results=st.integers(1, 50), direction=st.sampled_from(["FORWARD", "BACKWARD"]))
def test_paging_any_size_and_direction_equals_reference(
    events: list[dict[str, Any]], max_results: int, direction: str
) -> None:
    with fresh_store() as store:
        put(store, events)
        svc = services(store)
        got = collect(svc, V2020, {"MaxResults": str(max_results), "Direction": direction})
        want = reference(
            events,
            {},
            account=ACCOUNT_A,
            window=DEFAULT_WINDOW,
            descending=direction == "BACKWARD",
            short_types=False,
        )
        assert [e["eventId"] for e in got] == want


# -------------------------------------------------------------------------------- query plans

PLAN_EVENTS = [
    ev(
        1,
        NOW - HOUR_MS,
        requestId="req-1",
        eventType="ApiCall",
        serviceName="Ecs",
        eventRW="Write",
        sourceIpAddress="10.0.0.1",
        sensitiveAction=True,
        resourceType="ACS::ECS::Instance",
        resourceName="i-1",
        userIdentity={"type": "assumed-role", "userName": "RoleA:s1", "accessKeyId": "STS.tmp"},
    ),
    ev(2, NOW - HOUR_MS, userIdentity={"type": "ram-user", "userName": "alice", "accessKeyId": "LTAIkey1"}),
]
PLAN_VALUES: dict[Attr, str] = {
    Attr.EVENT_ID: "ev-1-1",
    Attr.REQUEST_ID: "req-1",
    Attr.EVENT_TYPE: "ApiCall",
    Attr.SERVICE_NAME: "Ecs",
    Attr.EVENT_NAME: "DescribeInstances",
    Attr.USER_NAME: "alice",
    Attr.RESOURCE_TYPE: "ACS::ECS::Instance",
    Attr.RESOURCE_NAME: "i-1",
    Attr.EVENT_RW: "Write",
    Attr.ACCESS_KEY_ID: "LTAIkey1",
    Attr.SENSITIVE_ACTION: "true",
    Attr.SOURCE_IP: "10.0.0.1",
    Attr.ROLE_NAME: "RoleA",
}


def _shapes() -> list[tuple[str, dict[str, str]]]:
    shapes: list[tuple[str, dict[str, str]]] = [(V2017, {})]
    shapes += [(V2017, {name: PLAN_VALUES[attr]}) for name, attr in SPEC_2017.items()]
    shapes.append((V2017, {"ResourceType": "Instance"}))  # widened to every ...::Instance
    shapes += [
        (V2020, {"LookupAttribute.1.Key": key, "LookupAttribute.1.Value": PLAN_VALUES[attr]})
        for key, attr in SPEC_2020.items()
    ]
    pairs_2017 = [
        ("EventName", "User"),
        ("ResourceType", "ResourceName"),
        ("EventRW", "ServiceName"),
        ("Event", "ResourceName"),
        ("EventAccessKeyId", "EventType"),
    ]
    shapes += [(V2017, {a: PLAN_VALUES[SPEC_2017[a]], b: PLAN_VALUES[SPEC_2017[b]]}) for a, b in pairs_2017]
    pairs_2020 = [
        ("EventRW", "EventName"),
        ("SourceIpAddress", "RoleName"),
        ("ResourceType", "User"),
        ("SensitiveAction", "ServiceName"),
        ("EventId", "EventRW"),
    ]
    for a, b in pairs_2020:
        shapes.append(
            (
                V2020,
                {
                    "LookupAttribute.1.Key": a,
                    "LookupAttribute.1.Value": PLAN_VALUES[SPEC_2020[a]],
                    "LookupAttribute.2.Key": b,
                    "LookupAttribute.2.Value": PLAN_VALUES[SPEC_2020[b]],
                },
            )
        )
    return shapes


@pytest.mark.parametrize(("version", "params"), _shapes(), ids=lambda v: str(v))
@pytest.mark.parametrize("descending", [True, False], ids=["backward", "forward"])
def test_every_filter_shape_is_index_served(
    store: SqliteStore, version: str, params: dict[str, str], descending: bool
) -> None:
    put(store, PLAN_EVENTS)
    conditions = conditions_2017(params) if version == V2017 else conditions_2020(params)
    equals: dict[Attr, tuple[str, ...]] = {a: (v,) for a, v in conditions.items()}
    if version == V2017 and Attr.RESOURCE_TYPE in conditions:
        equals[Attr.RESOURCE_TYPE] = resource_type_candidates(
            store, account_id=ACCOUNT_A, value=conditions[Attr.RESOURCE_TYPE]
        )
    flt = EventFilter(start_ms=NOW - 7 * DAY_MS, end_ms=NOW, equals=equals)
    plan = store.explain_find(account_id=ACCOUNT_A, flt=flt, descending=descending)
    assert plan, "the filter resolved to nothing: the test data must contain every value"
    text = " | ".join(plan)
    assert not re.search(r"\bSCAN (e|r|events|event_resources)\b(?! USING)", text), text
    assert re.search(r"SEARCH \w+ USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY", text), text


# ----------------------------------------------------------------------------- response shape


def test_response_shape_and_verbatim_events(store: SqliteStore) -> None:
    original = ev(
        1,
        NOW - HOUR_MS,
        eventVersion="1",
        additionalEventData={"mfaChecked": "false"},
        customField=[1, {"x": None}],
        isGlobal=False,
        acsRegion="cn-hangzhou",
    )
    put(store, [original])
    svc = services(store)
    for version in (V2017, V2020):
        reply = run(svc, version, {})
        assert set(reply) == {"StartTime", "EndTime", "Events"}
        assert reply["StartTime"] == wire(NOW - 7 * DAY_MS)
        assert reply["EndTime"] == wire(NOW)
        assert reply["Events"] == [original]
        assert orjson.dumps(reply["Events"][0]) == orjson.dumps(original)
        assert "RequestId" not in reply


def test_json_reply_splices_stored_bodies_exactly_as_parsed_and_dumped(store: SqliteStore) -> None:
    # A page ingested both ways (a decoded object, and JSON text kept as ingested), rendered as the
    # gateway does: the spliced reply is byte for byte the reply of the parsed events.
    page = [
        ev(
            i,
            NOW - i * 1000,
            userAgent=f"sdk/{i} (Linux, x86_64)",
            count=i,
            tags=["a", {"b": None}],
            ok=i % 2 == 0,
        )
        for i in range(1, 13)
    ]
    page.append(ev(20, NOW - 20_000, serviceName='quote " and \\ and é ✓', when={"x": [1, 2]}))
    store.append([event_from_mapping(e) for e in page[:6]])
    store.append([event_from_json(json.dumps(e, ensure_ascii=False)) for e in page[6:]])
    for version in (V2017, V2020):
        reply = {"RequestId": "R", **run(services(store), version, {"MaxResults": "50"})}
        parsed = {**reply, "Events": [orjson.loads(orjson.dumps(e)) for e in reply["Events"]]}
        assert len(reply["Events"]) == len(page)
        for fmt in ("JSON", "XML"):
            assert render("LookupEvents", reply, fmt) == render("LookupEvents", parsed, fmt)  # type: ignore[arg-type]


def test_echoes_the_given_window(store: SqliteStore) -> None:
    svc = services(store)
    start, end = wire(NOW - 3 * DAY_MS), wire(NOW + DAY_MS)
    for version in (V2017, V2020):
        reply = run(svc, version, {"StartTime": start, "EndTime": end})
        assert (reply["StartTime"], reply["EndTime"]) == (start, end)


@pytest.mark.parametrize(
    ("count", "max_results", "pages"), [(20, "20", 1), (21, "20", 2), (0, "5", 1), (5, "1", 5)]
)
def test_next_token_absent_on_last_page(store: SqliteStore, count: int, max_results: str, pages: int) -> None:
    put(store, [ev(n, NOW - n * 1000) for n in range(count)])
    svc = services(store)
    token, seen = None, 0
    for page_number in range(1, pages + 1):
        reply = run(svc, V2020, {"MaxResults": max_results, **({"NextToken": token} if token else {})})
        seen += len(reply["Events"])
        token = reply.get("NextToken")
        assert (token is None) == (page_number == pages)
        assert "NextToken" not in reply if token is None else isinstance(token, str)
    assert seen == count


@pytest.mark.parametrize(
    ("max_results", "size"), [(None, 20), ("", 20), ("0", 20), ("1", 1), ("050", 50), ("50", 50)]
)
def test_max_results_default_and_zero(store: SqliteStore, max_results: str | None, size: int) -> None:
    put(store, [ev(n, NOW - n * 1000) for n in range(60)])
    params = {} if max_results is None else {"MaxResults": max_results}
    for version in (V2017, V2020):
        assert len(run(services(store), version, params)["Events"]) == size


@pytest.mark.parametrize("max_results", ["51", "-1", "abc", "1.5", " 5", "+5", "²", "9999999"])
def test_max_results_invalid(store: SqliteStore, max_results: str) -> None:
    for version in (V2017, V2020):
        assert error_code(services(store), version, {"MaxResults": max_results}) == "InvalidQueryParameter"


def test_newest_first_and_same_time_by_arrival(store: SqliteStore) -> None:
    put(store, [ev(1, NOW - 2000), ev(2, NOW - 1000), ev(3, NOW - 1000), ev(4, NOW - 3000)])
    svc = services(store)
    newest_first = ["ev-1-3", "ev-1-2", "ev-1-1", "ev-1-4"]
    assert [e["eventId"] for e in run(svc, V2017, {})["Events"]] == newest_first
    assert [e["eventId"] for e in run(svc, V2020, {})["Events"]] == newest_first
    oldest_first = [e["eventId"] for e in run(svc, V2020, {"Direction": "FORWARD"})["Events"]]
    assert oldest_first == ["ev-1-4", "ev-1-1", "ev-1-2", "ev-1-3"]
    assert error_code(svc, V2020, {"Direction": "backward"}) == "InvalidQueryParameter"


# ---------------------------------------------------------------------------------- time window

# (version, StartTime, EndTime, code or None), from the seed's rules and error table.
WIRE_WINDOW_CASES: list[tuple[str, str | None, str | None, str | None]] = [
    (V2017, None, None, None),
    (V2017, "2024-05-31", None, "InvalidParameterStartTime"),
    (V2017, "2024-05-31T00:00:00.000Z", None, "InvalidParameterStartTime"),
    (V2017, None, "2024-06-01 00:00:00", "InvalidParameterEndTime"),
    (V2017, wire(NOW + HOUR_MS), wire(NOW + 2 * HOUR_MS), "InvalidParameterStartTimeExceedsCurrent"),
    (V2017, wire(NOW - 91 * DAY_MS), wire(NOW - 80 * DAY_MS), "InvalidParameterStartTimeOutOfDate"),
    (V2017, wire(NOW - DAY_MS), wire(NOW - DAY_MS), "InvalidParameterCombination"),
    (V2017, wire(NOW - DAY_MS), wire(NOW - 2 * DAY_MS), "InvalidParameterCombination"),
    (V2017, None, wire(NOW - 8 * DAY_MS), "InvalidParameterCombination"),
    (V2017, wire(NOW - 31 * DAY_MS), None, "InvalidParameterDateOutOfRange"),
    (V2017, wire(NOW - 30 * DAY_MS), None, None),
    (V2017, wire(NOW - 60 * DAY_MS), wire(NOW - 30 * DAY_MS), None),
    (V2017, None, wire(NOW + DAY_MS), None),
    (V2020, None, None, None),
    (V2020, wire(NOW - DAY_MS), None, "InvalidParameterCombination"),
    (V2020, None, wire(NOW), "InvalidParameterCombination"),
    (V2020, "x", wire(NOW), "InvalidParameterStartTime"),
    (V2020, wire(NOW - DAY_MS), "x", "InvalidParameterEndTime"),
    (V2020, wire(NOW - 90 * DAY_MS), wire(NOW), None),
    (V2020, wire(NOW - 90 * DAY_MS), wire(NOW + DAY_MS), "InvalidParameterDateOutOfRange"),
    (V2020, wire(NOW - 91 * DAY_MS), wire(NOW - 2 * DAY_MS), "InvalidParameterStartTimeOutOfDate"),
    (V2020, wire(NOW + HOUR_MS), wire(NOW + 2 * HOUR_MS), "InvalidParameterStartTimeExceedsCurrent"),
    (V2020, wire(NOW), wire(NOW), "InvalidParameterCombination"),
]


@pytest.mark.parametrize(("version", "start", "end", "code"), WIRE_WINDOW_CASES)
def test_time_window_codes(
    store: SqliteStore, version: str, start: str | None, end: str | None, code: str | None
) -> None:
    params = {k: v for k, v in (("StartTime", start), ("EndTime", end)) if v is not None}
    svc = services(store)
    if code is None:
        run(svc, version, params)
    else:
        assert error_code(svc, version, params) == code


def test_time_window_messages(store: SqliteStore) -> None:
    svc = services(store)
    with pytest.raises(ApiError) as info:
        run(svc, V2017, {"StartTime": wire(NOW - 31 * DAY_MS)})
    assert info.value.message == "Query time range exceeds 30 days."
    with pytest.raises(ApiError) as info:
        run(svc, V2017, {"StartTime": wire(NOW - 91 * DAY_MS), "EndTime": wire(NOW - 85 * DAY_MS)})
    assert info.value.message == "The StartTime exceeds the limit of 90 days."


def test_2020_span_is_configurable(store: SqliteStore) -> None:
    @dataclass(frozen=True, slots=True)
    class Settings30(Settings):
        lookup_events_2020_max_span_days: int = 30

    params = {"StartTime": wire(NOW - 31 * DAY_MS), "EndTime": wire(NOW)}
    run(services(store), V2020, params)
    with pytest.raises(ApiError) as info:
        run(services(store, Settings30()), V2020, params)
    assert (info.value.code, info.value.message) == (
        "InvalidParameterDateOutOfRange",
        "Query time range exceeds 30 days.",
    )


def test_default_window_is_pinned_across_pages(store: SqliteStore) -> None:
    """Page 2 asked an hour later still reaches the oldest events of the first page's window."""
    oldest = NOW - 7 * DAY_MS + 10 * 60_000
    put(store, [ev(1, NOW - 1000), ev(2, NOW - 2000), ev(3, oldest)])
    svc = services(store)
    first = run(svc, V2017, {"MaxResults": "2"})
    assert first["NextToken"]
    second = run(svc, V2017, {"MaxResults": "2", "NextToken": first["NextToken"]}, now_ms=NOW + HOUR_MS)
    assert [e["eventId"] for e in second["Events"]] == ["ev-1-3"]
    assert (second["StartTime"], second["EndTime"]) == (first["StartTime"], first["EndTime"])


# ------------------------------------------------------------------------------------ NextToken


def test_next_token_bound_to_query_account_and_version(store: SqliteStore) -> None:
    put(store, [ev(n, NOW - n * 1000, eventName="CreateUser") for n in range(5)])
    put(store, [ev(n, NOW - n * 1000, account=ACCOUNT_B, eventName="CreateUser") for n in range(5)])
    svc = services(store)
    params = {"EventName": "CreateUser", "MaxResults": "2"}
    token = run(svc, V2017, params)["NextToken"]
    # Same query, other page size: fine (keyset positions do not depend on it).
    assert len(run(svc, V2017, {**params, "MaxResults": "3", "NextToken": token})["Events"]) == 3
    changed = [
        {**params, "EventName": "DescribeInstances"},
        {**params, "User": "alice"},
        {**params, "StartTime": wire(NOW - DAY_MS)},
        {**params, "EndTime": wire(NOW)},
    ]
    for other in changed:
        assert error_code(svc, V2017, {**other, "NextToken": token}) == "InvalidQueryParameter"
    assert (
        error_code(svc, V2017, {**params, "NextToken": token}, account=ACCOUNT_B) == "InvalidQueryParameter"
    )
    attrs = {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "CreateUser", "MaxResults": "2"}
    assert error_code(svc, V2020, {**attrs, "NextToken": token}) == "InvalidQueryParameter"
    token_2020 = run(svc, V2020, attrs)["NextToken"]
    assert error_code(svc, V2020, {**attrs, "Direction": "FORWARD", "NextToken": token_2020}) == (
        "InvalidQueryParameter"
    )
    for garbage in ("2", "20", token[:-3], token[1:], "A" + token):
        assert error_code(svc, V2017, {**params, "NextToken": garbage}) == "InvalidQueryParameter"


def test_empty_next_token_means_first_page(store: SqliteStore) -> None:
    put(store, [ev(1, NOW - 1000)])
    assert len(run(services(store), V2017, {"NextToken": ""})["Events"]) == 1


# ---------------------------------------------------------------------------- account isolation


def test_accounts_are_isolated(store: SqliteStore) -> None:
    put(store, [ev(n, NOW - n * 1000, eventName="CreateUser", requestId="r-shared") for n in range(3)])
    put(
        store,
        [
            ev(n, NOW - n * 1000, account=ACCOUNT_B, eventName="CreateUser", requestId="r-shared")
            for n in (7, 8)
        ],
    )
    svc = services(store)
    for version, params in ((V2017, {}), (V2017, {"Request": "r-shared"}), (V2020, {})):
        a = [e["eventId"] for e in collect(svc, version, params)]
        b = [e["eventId"] for e in collect(svc, version, params, account=ACCOUNT_B)]
        assert a == ["ev-1-0", "ev-1-1", "ev-1-2"]
        assert b == ["ev-2-7", "ev-2-8"]
    assert run(svc, V2017, {"Event": "ev-1-0"}, account=ACCOUNT_B)["Events"] == []
    assert run(svc, V2017, {"Event": "ev-1-0"}, account="3000000000000003")["Events"] == []


# ------------------------------------------------------------------------- 2017 parameter rules


def test_2017_event_rw_defaults_to_all(store: SqliteStore) -> None:
    put(store, [ev(1, NOW - 1000, eventRW="Read"), ev(2, NOW - 2000, eventRW="Write"), ev(3, NOW - 3000)])
    svc = services(store)

    def ids(params: dict[str, str]) -> list[str]:
        return [e["eventId"] for e in run(svc, V2017, params)["Events"]]

    assert ids({}) == ids({"EventRW": "All"}) == ["ev-1-1", "ev-1-2", "ev-1-3"]
    assert ids({"EventRW": "Write"}) == ["ev-1-2"]
    assert ids({"EventRW": "Read"}) == ["ev-1-1"]
    for bad in ("write", "ALL", "Both"):
        assert error_code(svc, V2017, {"EventRW": bad}) == "InvalidQueryParameter"


def test_2017_short_resource_type(store: SqliteStore) -> None:
    put(
        store,
        [
            ev(1, NOW - 1000, resourceType="ACS::ECS::Instance", resourceName="i-1"),
            ev(2, NOW - 2000, referencedResources={"ACS::RDS::Instance": ["rm-1"]}),
            ev(3, NOW - 3000, resourceType="ACS::ECS::Disk", resourceName="i-1"),
            ev(4, NOW - 4000, resourceType="Instance", resourceName="old"),
        ],
    )
    svc = services(store)

    def ids(version: str, params: dict[str, str]) -> list[str]:
        return [e["eventId"] for e in run(svc, version, params)["Events"]]

    assert ids(V2017, {"ResourceType": "Instance"}) == ["ev-1-1", "ev-1-2", "ev-1-4"]
    assert ids(V2017, {"ResourceType": "ACS::ECS::Instance"}) == ["ev-1-1"]
    # Type and name must hold for the same resource: ev-1-3 is i-1 but a Disk.
    assert ids(V2017, {"ResourceType": "Instance", "ResourceName": "i-1"}) == ["ev-1-1"]
    attr = {"LookupAttribute.1.Key": "ResourceType"}
    assert ids(V2020, {**attr, "LookupAttribute.1.Value": "Instance"}) == ["ev-1-4"]
    assert ids(V2020, {**attr, "LookupAttribute.1.Value": "ACS::RDS::Instance"}) == ["ev-1-2"]


def test_2017_empty_parameters_are_absent() -> None:
    assert conditions_2017({"Event": "", "User": "", "EventRW": "", "Action": "LookupEvents"}) == {}


# ------------------------------------------------------------------------- 2020 attribute rules


def attrs(*pairs: tuple[str, str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for n, (key, value) in enumerate(pairs, start=1):
        params[f"LookupAttribute.{n}.Key"] = key
        params[f"LookupAttribute.{n}.Value"] = value
    return params


def test_2020_same_key_twice_second_applies() -> None:
    got = conditions_2020(attrs(("EventName", "A"), ("User", "u"), ("EventName", "B")))
    assert got == {Attr.EVENT_NAME: "B", Attr.USER_NAME: "u"}


def test_2020_more_than_two_uses_first_two() -> None:
    got = conditions_2020(
        attrs(("EventName", "A"), ("User", "u"), ("ServiceName", "Ecs"), ("EventRW", "Read"))
    )
    assert got == {Attr.EVENT_NAME: "A", Attr.USER_NAME: "u"}
    # Order is by N, not by the order parameters arrive in.
    params = {
        "LookupAttribute.2.Key": "User",
        "LookupAttribute.2.Value": "u",
        "LookupAttribute.10.Key": "EventRW",
        "LookupAttribute.10.Value": "Read",
        "LookupAttribute.1.Key": "EventName",
        "LookupAttribute.1.Value": "A",
    }
    assert list(conditions_2020(params)) == [Attr.EVENT_NAME, Attr.USER_NAME]


def test_2020_value_forms() -> None:
    assert conditions_2020(attrs(("SensitiveAction", "TRUE"))) == {Attr.SENSITIVE_ACTION: "true"}
    assert conditions_2020(attrs(("EventRW", "All"), ("User", "u"))) == {Attr.USER_NAME: "u"}
    assert conditions_2020(attrs(("RoleName", "RoleA"))) == {Attr.ROLE_NAME: "RoleA"}
    assert conditions_2020({}) == {}


@pytest.mark.parametrize(
    "params",
    [
        attrs(("Username", "u")),
        attrs(("eventName", "X")),
        attrs(("EventName", "A"), ("User", "u"), ("Bogus", "x")),
        {"LookupAttribute.1.Key": "EventName"},
        {"LookupAttribute.1.Value": "X"},
        attrs(("EventName", "")),
        {"LookupAttribute.0.Key": "EventName", "LookupAttribute.0.Value": "X"},
        {"LookupAttribute.x.Key": "EventName", "LookupAttribute.x.Value": "X"},
        {"LookupAttribute.1.Name": "EventName"},
        attrs(("EventRW", "write")),
        attrs(("SensitiveAction", "yes")),
    ],
)
def test_2020_invalid_attributes(store: SqliteStore, params: dict[str, str]) -> None:
    assert error_code(services(store), V2020, params) == "InvalidQueryParameter"


def test_2020_two_conditions_are_anded(store: SqliteStore) -> None:
    put(
        store,
        [
            ev(1, NOW - 1000, eventName="CreateUser", eventRW="Write"),
            ev(2, NOW - 2000, eventName="CreateUser", eventRW="Read"),
            ev(3, NOW - 3000, eventName="ListUsers", eventRW="Write"),
        ],
    )
    reply = run(services(store), V2020, attrs(("EventName", "CreateUser"), ("EventRW", "Write")))
    assert [e["eventId"] for e in reply["Events"]] == ["ev-1-1"]
