"""service.access_keys over a real SQLite file: every operation against a brute-force reference.

The reference is computed from the raw events in ingest order: an item's last use is its event
with the greatest (eventTime, arrival), and only items last used inside the 400-day window count.
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rich.console import Console

from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import DAY_MS, parse_wire_time
from trailhouse.render.report_html import report_to_html
from trailhouse.render.report_json import report_to_json
from trailhouse.render.report_table import report_to_table
from trailhouse.service import access_key_report as key_report
from trailhouse.service import access_keys as ak
from trailhouse.service.catalog import ServiceCatalog, default_catalog
from trailhouse.service.pagetoken import InvalidPageToken, PageTokens
from trailhouse.storage.base import EventStore
from trailhouse.storage.sqlite import SqliteStore

NOW = parse_wire_time("2024-06-01T12:00:00Z")
HOUR_MS = 3_600_000
WINDOW_DAYS = 400
SINCE = NOW - WINDOW_DAYS * DAY_MS


def last_used_ips(store: Any, tokens: Any, **kwargs: Any) -> ak.UsagePage:
    return ak.list_last_used(store, tokens, ak.UsageList.IPS, **kwargs)


ACCOUNT = "1000000000000001"
OTHER = "2000000000000002"
KEYS = ("LTAIkeyAAAA", "LTAIkeyBBBB")
SERVICES = ("Ecs", "Ram", "Oss", None)
IPS = ("10.0.0.1", "10.0.0.2", "192.168.7.7", "2001:db8::1", None)
NAMES = ("DescribeInstances", "CreateUser", "GetObject", "ListUsers")
RESOURCES = (("ACS::ECS::Instance", "i-1"), ("ACS::ECS::Instance", "i-2"), ("ACS::OSS::Bucket", "logs"))
CATEGORIES = (None, "Management", "Data", "Insight")
# Few distinct times so that ties are common, plus some outside the window on either edge.
OFFSETS = (0, 1, 2, 3, 50, 24 * 399, 24 * 400 + 1, 24 * 500)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LISTS = (ak.UsageList.IPS, ak.UsageList.EVENTS, ak.UsageList.RESOURCES)


@contextmanager
def sqlite_store() -> Iterator[SqliteStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "trail.db")
        try:
            yield store
        finally:
            store.close()


def iso(ms: int) -> str:
    from trailhouse.model.times import format_wire_time

    return format_wire_time(ms)


@dataclass(frozen=True)
class Spec:
    account: str
    key: str
    service: str | None
    ip: str | None
    name: str
    offset_h: int
    category: str | None
    failed: bool
    resource: tuple[str, str] | None
    refs: tuple[tuple[str, str], ...]
    root: bool


def make_event(i: int, s: Spec) -> dict[str, Any]:
    identity: dict[str, Any] = {"accountId": s.account, "accessKeyId": s.key}
    identity.update(
        {"type": "root-account", "principalId": s.account, "userName": "root"}
        if s.root
        else {"type": "ram-user", "principalId": "2755", "userName": f"user-{s.key[-1]}"}
    )
    event: dict[str, Any] = {
        "eventId": f"ev-{i:05d}",
        "eventVersion": 1,
        "eventTime": iso(NOW - s.offset_h * HOUR_MS),
        "eventName": s.name,
        "eventType": "ApiCall",
        "userIdentity": identity,
    }
    if s.service is not None:
        event["serviceName"] = s.service
    if s.ip is not None:
        event["sourceIpAddress"] = s.ip
    if s.category is not None:
        event["eventCategory"] = s.category
    if s.failed:
        event["errorCode"] = "NoPermission"
    if s.resource is not None:
        event["resourceType"], event["resourceName"] = s.resource
    if s.refs:
        refs: dict[str, list[str]] = {}
        for rtype, rname in s.refs:
            refs.setdefault(rtype, []).append(rname)
        event["referencedResources"] = refs
    return event


specs = st.builds(
    Spec,
    account=st.sampled_from((ACCOUNT, ACCOUNT, ACCOUNT, OTHER)),
    key=st.sampled_from(KEYS),
    service=st.sampled_from(SERVICES),
    ip=st.sampled_from(IPS),
    name=st.sampled_from(NAMES),
    offset_h=st.sampled_from(OFFSETS),
    category=st.sampled_from(CATEGORIES),
    failed=st.booleans(),
    resource=st.one_of(st.none(), st.sampled_from(RESOURCES)),
    refs=st.lists(st.sampled_from(RESOURCES), max_size=2, unique=True).map(tuple),
    root=st.booleans(),
)


@dataclass
class Dataset:
    events: list[dict[str, Any]]  # in ingest order (= arrival order = seq order)

    def ingest(self, store: EventStore, rnd: random.Random) -> None:
        i = 0
        while i < len(self.events):
            n = rnd.randint(1, 6)
            store.append([event_from_mapping(e) for e in self.events[i : i + n]])
            i += n


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    # Hypothesis keeps lists short on its own; drawing the size first gives busy keys too.
    size = draw(st.integers(0, 80))
    chosen = draw(st.lists(specs, min_size=size, max_size=size))
    return Dataset([make_event(i, s) for i, s in enumerate(chosen)])


# ---------------------------------------------------------------------------------- the reference


def source_of(category: str | None) -> str:
    return {None: "ManagementEvent", "Management": "ManagementEvent", "Data": "DataEvent"}.get(
        category, "Internal"
    )


def resource_pairs(e: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if "resourceName" in e:
        pairs.append((e["resourceType"], e["resourceName"]))
    for rtype, names in e.get("referencedResources", {}).items():
        pairs += [(rtype, n) for n in names]
    return list(dict.fromkeys(pairs))


@dataclass
class Ref:
    used_ms: int
    first_ms: int
    calls: int
    failed: int
    source: str
    event: dict[str, Any]
    arrival: int


def reference(
    events: list[dict[str, Any]], account: str, key: str, kind: str, service: str | None
) -> dict[tuple[str, str], Ref]:
    """(item, item_type) → last use, for one list (or per service for "products")."""
    out: dict[tuple[str, str], Ref] = {}
    for arrival, e in enumerate(events):
        ident = e["userIdentity"]
        if ident["accountId"] != account or ident["accessKeyId"] != key:
            continue
        svc = e.get("serviceName", "")
        if kind != "products" and svc != service:
            continue
        if kind == "ips":
            items = [(e["sourceIpAddress"], "")] if e.get("sourceIpAddress") else []
        elif kind == "events":
            items = [(e["eventName"], "")]
        elif kind == "resources":
            items = [(name, rtype) for rtype, name in resource_pairs(e) if name]
        else:
            items = [(svc, "")]
        t = parse_wire_time(e["eventTime"])
        for item in items:
            ref = out.get(item)
            if ref is None:
                ref = out[item] = Ref(t, t, 0, 0, "", e, arrival)
            ref.first_ms = min(ref.first_ms, t)
            ref.calls += 1
            ref.failed += 1 if "errorCode" in e else 0
            if (t, arrival) >= (ref.used_ms, ref.arrival):
                ref.used_ms, ref.arrival, ref.event = t, arrival, e
            ref.source = source_of(ref.event.get("eventCategory"))
    return {item: ref for item, ref in out.items() if ref.used_ms >= SINCE}


def indented(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False)


def walk(store: EventStore, tokens: PageTokens, which: ak.UsageList, **query: Any) -> list[ak.UsagePage]:
    pages = [ak.list_last_used(store, tokens, which, now_ms=NOW, **query)]
    while pages[-1].next_token is not None:
        assert len(pages) < 500, "paging does not terminate"
        pages.append(
            ak.list_last_used(store, tokens, which, now_ms=NOW, next_token=pages[-1].next_token, **query)
        )
    return pages


KIND_OF = {ak.UsageList.IPS: "ips", ak.UsageList.EVENTS: "events", ak.UsageList.RESOURCES: "resources"}


def check_list(
    store: EventStore,
    tokens: PageTokens,
    events: list[dict[str, Any]],
    which: ak.UsageList,
    *,
    account: str,
    key: str,
    service: str,
    page_size: int | None,
) -> None:
    expected = reference(events, account, key, KIND_OF[which], service)
    pages = walk(
        store, tokens, which, account_id=account, access_key_id=key, service_name=service, page_size=page_size
    )
    size = ak.page_size_or_default(page_size)
    got = [item for page in pages for item in page.items]
    # Every page but the last is full; the last has no token; an empty result is one empty page.
    assert all(len(p.items) == size for p in pages[:-1])
    assert 0 < len(pages[-1].items) <= size or len(pages) == 1
    assert len(pages) == max(1, -(-len(expected) // size))
    keys = [(u.item, u.item_type) for u in got]
    assert len(keys) == len(set(keys)), "an entry was repeated across pages"
    assert set(keys) == set(expected), "an entry was lost or invented"
    assert [u.used_ms for u in got] == sorted((u.used_ms for u in got), reverse=True)
    for use in got:
        ref = expected[(use.item, use.item_type)]
        assert use.service_name == service
        assert (use.used_ms, use.first_used_ms, use.calls, use.failed_calls) == (
            ref.used_ms,
            ref.first_ms,
            ref.calls,
            ref.failed,
        )
        assert use.source == ref.source
        assert use.detail == indented(ref.event)


def check_products_and_info(
    store: EventStore, events: list[dict[str, Any]], *, account: str, key: str
) -> None:
    expected = reference(events, account, key, "products", None)
    ordered = sorted(expected.items(), key=lambda kv: (-kv[1].used_ms, -kv[1].arrival))
    products = ak.last_used_products(store, account_id=account, access_key_id=key, now_ms=NOW)
    catalog = default_catalog()
    assert [p.service_name for p in products] == [svc for (svc, _), _ in ordered if svc]
    for p in products:
        ref = expected[(p.service_name, "")]
        assert (p.used_ms, p.source, p.detail) == (ref.used_ms, ref.source, indented(ref.event))
        assert (p.service_name_cn, p.service_name_en) == (
            catalog.names(p.service_name).name_cn,
            catalog.names(p.service_name).name_en,
        )
    info = ak.last_used_info(store, account_id=account, access_key_id=key, now_ms=NOW)
    assert info.access_key_id == key
    if not ordered:
        assert info == ak.LastUsedInfo(key)
        return
    (svc, _), ref = ordered[0]
    ident = ref.event["userIdentity"]
    assert info.used_ms == ref.used_ms and info.service_name == svc
    assert info.detail == indented(ref.event) and info.source == ref.source
    assert info.account_id == info.owner_id == account
    assert info.account_type == ident["type"]
    assert info.user_name == ("root" if ident["type"] == "root-account" else ident["userName"])


# ----------------------------------------------------------------------------------- properties


@PROPERTY
@given(
    data=datasets(),
    page_size=st.one_of(st.none(), st.integers(0, 7), st.integers(8, 100)),
    seed=st.integers(0, 2**16),
)
def test_every_operation_equals_the_reference(data: Dataset, page_size: int | None, seed: int) -> None:
    event(f"events: {len(data.events) // 20 * 20}+")
    rnd = random.Random(seed)
    # Out-of-order arrival: shuffle the ingest order; the reference follows the same order.
    rnd.shuffle(data.events)
    with sqlite_store() as store:
        data.ingest(store, rnd)
        tokens = PageTokens.for_store(store)
        for account in (ACCOUNT, OTHER):
            for key in KEYS:
                for which in LISTS:
                    for service in ("Ecs", "Ram", "Oss"):
                        check_list(
                            store,
                            tokens,
                            data.events,
                            which,
                            account=account,
                            key=key,
                            service=service,
                            page_size=page_size,
                        )
                check_products_and_info(store, data.events, account=account, key=key)


def test_every_page_size_on_one_dataset() -> None:
    rnd = random.Random(7)
    events = [
        make_event(
            i,
            Spec(
                ACCOUNT,
                KEYS[0],
                "Ecs",
                f"10.1.{i % 7}.{i % 13}",
                NAMES[i % 4],
                rnd.choice(OFFSETS[:5]) + i % 9,
                None,
                i % 5 == 0,
                ("ACS::ECS::Instance", f"i-{i % 11}"),
                (),
                False,
            ),
        )
        for i in range(120)
    ]
    data = Dataset(events)
    with sqlite_store() as store:
        data.ingest(store, rnd)
        tokens = PageTokens.for_store(store)
        for page_size in [None, *range(0, 101)]:
            for which in LISTS:
                check_list(
                    store,
                    tokens,
                    events,
                    which,
                    account=ACCOUNT,
                    key=KEYS[0],
                    service="Ecs",
                    page_size=page_size,
                )


def test_every_operation_equals_the_reference_on_every_backend(backend_store: EventStore) -> None:
    """The same contract on SQLite and PostgreSQL, on one busy dataset with ties and late arrivals."""
    rnd = random.Random(11)
    specs_ = [
        Spec(
            rnd.choice((ACCOUNT, ACCOUNT, OTHER)),
            rnd.choice(KEYS),
            rnd.choice(SERVICES),
            rnd.choice(IPS),
            rnd.choice(NAMES),
            rnd.choice(OFFSETS),
            rnd.choice(CATEGORIES),
            rnd.random() < 0.2,
            rnd.choice((None, *RESOURCES)),
            tuple(rnd.sample(RESOURCES, rnd.randint(0, 2))),
            rnd.random() < 0.3,
        )
        for _ in range(150)
    ]
    data = Dataset([make_event(i, spec) for i, spec in enumerate(specs_)])
    rnd.shuffle(data.events)
    data.ingest(backend_store, rnd)
    tokens = PageTokens.for_store(backend_store)
    for account in (ACCOUNT, OTHER):
        for key in KEYS:
            for which in LISTS:
                for service in ("Ecs", "Ram", "Oss"):
                    for page_size in (1, 4, None):
                        check_list(
                            backend_store,
                            tokens,
                            data.events,
                            which,
                            account=account,
                            key=key,
                            service=service,
                            page_size=page_size,
                        )
            check_products_and_info(backend_store, data.events, account=account, key=key)


# ---------------------------------------------------------------------------- crafted behaviours


def ev(i: int, when: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": f"e-{i}",
        "eventTime": when,
        "eventName": fields.pop("name", "DescribeInstances"),
        "serviceName": fields.pop("service", "Ecs"),
        "sourceIpAddress": fields.pop("ip", "10.0.0.1"),
        "userIdentity": {
            "accountId": fields.pop("account", ACCOUNT),
            "type": "ram-user",
            "userName": fields.pop("user", "alice"),
            "accessKeyId": fields.pop("key", KEYS[0]),
        },
    }
    event.update(fields)
    return event


def put(store: EventStore, *events: dict[str, Any]) -> None:
    store.append([event_from_mapping(e) for e in events])


def test_older_event_ingested_later_keeps_last_use_and_detail() -> None:
    newer = ev(1, "2024-05-30T10:00:00Z", eventCategory="Data")
    older = ev(2, "2024-05-01T10:00:00Z", name="StopInstance")
    with sqlite_store() as store:
        put(store, newer)
        put(store, older)
        tokens = PageTokens.for_store(store)
        page = last_used_ips(
            store, tokens, account_id=ACCOUNT, access_key_id=KEYS[0], service_name="Ecs", now_ms=NOW
        )
        (use,) = page.items
        assert use.used_ms == parse_wire_time("2024-05-30T10:00:00Z")
        assert use.first_used_ms == parse_wire_time("2024-05-01T10:00:00Z")
        assert use.calls == 2 and use.source == "DataEvent"
        assert json.loads(use.detail)["eventId"] == "e-1"
        info = ak.last_used_info(store, account_id=ACCOUNT, access_key_id=KEYS[0], now_ms=NOW)
        assert json.loads(info.detail or "")["eventId"] == "e-1"


def test_detail_is_the_stored_event_indented_like_the_seed() -> None:
    event = ev(
        1,
        "2024-05-30T10:00:00Z",
        eventVersion=1,
        isGlobal=False,
        acsRegion="cn-hangzhou",
        requestParameters={"Name": "中文", "Nested": {"a": [1, 2.5, None, True]}},
    )
    with sqlite_store() as store:
        put(store, event)
        (product,) = ak.last_used_products(store, account_id=ACCOUNT, access_key_id=KEYS[0], now_ms=NOW)
    assert product.detail.startswith('{\n  "eventId": "e-1",\n  "eventTime"')
    assert json.loads(product.detail) == event
    assert product.detail == json.dumps(event, indent=2, ensure_ascii=False)


def test_window_counts_back_from_now() -> None:
    edge = NOW - WINDOW_DAYS * DAY_MS
    with sqlite_store() as store:
        put(
            store,
            ev(1, iso(edge - 1000), ip="1.1.1.1"),  # just outside: gone
            ev(2, iso(edge), ip="2.2.2.2"),  # exactly on the edge: kept
            ev(3, iso(edge - 5 * DAY_MS), ip="3.3.3.3"),
            ev(4, iso(NOW - DAY_MS), ip="3.3.3.3"),  # first use outside, last inside: kept
        )
        tokens = PageTokens.for_store(store)
        page = last_used_ips(
            store, tokens, account_id=ACCOUNT, access_key_id=KEYS[0], service_name="Ecs", now_ms=NOW
        )
        assert [u.item for u in page.items] == ["3.3.3.3", "2.2.2.2"]
        assert page.items[0].first_used_ms == edge - 5 * DAY_MS
        shorter = last_used_ips(
            store,
            tokens,
            account_id=ACCOUNT,
            access_key_id=KEYS[0],
            service_name="Ecs",
            now_ms=NOW,
            window_days=2,
        )
        assert [u.item for u in shorter.items] == ["3.3.3.3"]


def test_accounts_are_isolated() -> None:
    with sqlite_store() as store:
        put(store, ev(1, "2024-05-30T10:00:00Z", account=OTHER, ip="9.9.9.9"), ev(2, "2024-05-29T10:00:00Z"))
        tokens = PageTokens.for_store(store)
        for account, ip in ((ACCOUNT, "10.0.0.1"), (OTHER, "9.9.9.9")):
            page = last_used_ips(
                store, tokens, account_id=account, access_key_id=KEYS[0], service_name="Ecs", now_ms=NOW
            )
            assert [u.item for u in page.items] == [ip]
        assert ak.last_used_info(
            store, account_id="3000", access_key_id=KEYS[0], now_ms=NOW
        ) == ak.LastUsedInfo(KEYS[0])
        assert ak.last_used_products(store, account_id="3000", access_key_id=KEYS[0], now_ms=NOW) == []


def test_page_tokens_are_bound_to_account_list_and_query() -> None:
    with sqlite_store() as store:
        put(store, *(ev(i, iso(NOW - i * HOUR_MS), ip=f"10.0.0.{i}") for i in range(1, 6)))
        tokens = PageTokens.for_store(store)
        query = {"access_key_id": KEYS[0], "service_name": "Ecs", "now_ms": NOW}
        first = last_used_ips(store, tokens, account_id=ACCOUNT, page_size=2, **query)
        assert first.next_token is not None
        # A different page size continues the same walk.
        rest = last_used_ips(
            store, tokens, account_id=ACCOUNT, page_size=10, next_token=first.next_token, **query
        )
        assert [u.item for u in first.items + rest.items] == [f"10.0.0.{i}" for i in range(1, 6)]
        assert rest.next_token is None
        bad = [
            lambda: last_used_ips(store, tokens, account_id=OTHER, next_token=first.next_token, **query),
            lambda: ak.list_last_used(
                store, tokens, ak.UsageList.EVENTS, account_id=ACCOUNT, next_token=first.next_token, **query
            ),
            lambda: last_used_ips(
                store,
                tokens,
                account_id=ACCOUNT,
                next_token=first.next_token,
                **{**query, "service_name": "Ram"},
            ),
            lambda: last_used_ips(
                store, tokens, account_id=ACCOUNT, next_token=first.next_token[:-2] + "xx", **query
            ),
            lambda: last_used_ips(store, tokens, account_id=ACCOUNT, next_token="garbage", **query),
        ]
        for call in bad:
            with pytest.raises(InvalidPageToken):
                call()


@pytest.mark.parametrize(("size", "ok"), [(None, 20), (0, 20), (1, 1), (100, 100), (-1, None), (101, None)])
def test_page_size_rules(size: int | None, ok: int | None) -> None:
    if ok is None:
        with pytest.raises(ak.UsageQueryInvalid):
            ak.page_size_or_default(size)
    else:
        assert ak.page_size_or_default(size) == ok


def test_service_name_matches_the_spelling_the_key_used() -> None:
    with sqlite_store() as store:
        put(store, ev(1, "2024-05-30T10:00:00Z", service="ActionTrail", name="LookupEvents"))
        tokens = PageTokens.for_store(store)
        for asked in ("ActionTrail", "Actiontrail", "actiontrail"):
            page = ak.list_last_used(
                store,
                tokens,
                ak.UsageList.EVENTS,
                account_id=ACCOUNT,
                access_key_id=KEYS[0],
                service_name=asked,
                now_ms=NOW,
            )
            assert [(u.service_name, u.item) for u in page.items] == [("ActionTrail", "LookupEvents")]
        (product,) = ak.last_used_products(store, account_id=ACCOUNT, access_key_id=KEYS[0], now_ms=NOW)
        assert (product.service_name, product.service_name_en) == ("ActionTrail", "ActionTrail")


def test_info_for_root_account_and_events_without_service() -> None:
    root = ev(1, "2024-05-30T10:00:00Z", service="Oss")
    root["userIdentity"] = {
        "accountId": ACCOUNT,
        "type": "root-account",
        "principalId": ACCOUNT,
        "accessKeyId": KEYS[1],
    }
    anonymous = ev(2, "2024-05-31T10:00:00Z", key=KEYS[1])
    del anonymous["serviceName"]
    with sqlite_store() as store:
        put(store, root)
        info = ak.last_used_info(store, account_id=ACCOUNT, access_key_id=KEYS[1], now_ms=NOW)
        assert (info.account_type, info.user_name, info.service_name) == ("root-account", "root", "Oss")
        assert (info.service_name_cn, info.service_name_en) == ("对象存储 OSS", "Object Storage Service")
        put(store, anonymous)
        # The latest use names no service: Info reports it, Products lists only named services.
        info = ak.last_used_info(store, account_id=ACCOUNT, access_key_id=KEYS[1], now_ms=NOW)
        assert (info.service_name, info.service_name_cn, info.account_type) == ("", "", "ram-user")
        products = ak.last_used_products(store, account_id=ACCOUNT, access_key_id=KEYS[1], now_ms=NOW)
        assert [p.service_name for p in products] == ["Oss"]


def test_catalog_lookup() -> None:
    catalog = default_catalog()
    for code in (
        "Ecs",
        "Oss",
        "Ram",
        "Rds",
        "Slb",
        "Vpc",
        "Kms",
        "Sts",
        "Actiontrail",
        "ActionTrail",
        "Ims",
        "R-kvstore",
        "Redis",
        "Kvstore",
        "Cdn",
        "Cs",
        "Fc",
        "Sls",
        "Log",
        "AasSub",
        "Ess",
        "Nas",
        "Ack",
        "Dns",
        "Alidns",
        "Cms",
        "Waf",
        "Ddos",
        "Sas",
        "Resourcemanager",
        "Bss",
        "Polardb",
        "Mongodb",
        "Elasticsearch",
        "Mq",
        "Ons",
    ):
        assert code in catalog and code.upper() in catalog
        names = catalog.names(code)
        assert names.code == code and names.name_cn and names.name_en and names.name_en != code.lower()
    assert catalog.names("redis") == catalog.names("redis")
    assert catalog.names("R-kvstore").name_en == catalog.names("KVSTORE").name_en
    assert catalog.names("NewThing") == catalog.names("NewThing").__class__(
        "NewThing", "NewThing", "NewThing"
    )
    with pytest.raises(ValueError):
        ServiceCatalog.from_json(
            b'{"services": [{"codes": ["A"], "cn": "x", "en": "y"}, {"codes": ["a"], "cn": "x", "en": "y"}]}'
        )


# ------------------------------------------------------------------------------ leaked-key report

LEAK_KEY = "LTAI5tLeakedKey0001"
OFFICE = "203.0.113.10"
ATTACKER_1 = "198.51.100.7"
ATTACKER_2 = "198.51.100.8"
T0 = parse_wire_time("2024-05-20T03:15:00Z")  # the first malicious call


def leak_story() -> list[dict[str, Any]]:
    seq = iter(range(1, 1000))

    def call(t: int, name: str, service: str, ip: str, **extra: Any) -> dict[str, Any]:
        return ev(
            next(seq),
            iso(t),
            name=name,
            service=service,
            ip=ip,
            key=LEAK_KEY,
            user="deploy-bot",
            userAgent=extra.pop("ua", "aliyun-cli/3.0"),
            **extra,
        )

    events = []
    # Three weeks of ordinary use from the office, before and after the leak.
    for day in range(21, -1, -1):
        events.append(call(T0 - day * DAY_MS - 2 * HOUR_MS, "DescribeInstances", "Ecs", OFFICE))
    events.append(
        call(
            T0 - DAY_MS,
            "GetObject",
            "Oss",
            OFFICE,
            resourceType="ACS::OSS::Bucket",
            resourceName="deploy-artifacts",
        )
    )
    ua = "python-requests/2.31 <script>alert(1)</script> [bold red]pwn[/]"
    events += [
        call(T0, "GetCallerIdentity", "Sts", ATTACKER_1, ua=ua),
        call(T0 + 60_000, "ListUsers", "Ram", ATTACKER_1, ua=ua),
        call(
            T0 + 120_000,
            "CreateUser",
            "Ram",
            ATTACKER_1,
            ua=ua,
            resourceType="ACS::RAM::User",
            resourceName="backup-admin",
        ),
        call(
            T0 + 180_000,
            "CreateAccessKey",
            "Ram",
            ATTACKER_1,
            ua=ua,
            referencedResources={"ACS::RAM::User": ["backup-admin"]},
        ),
        call(
            T0 + 240_000,
            "AttachPolicyToUser",
            "Ram",
            ATTACKER_1,
            ua=ua,
            referencedResources={
                "ACS::RAM::User": ["backup-admin"],
                "ACS::RAM::Policy": ["AdministratorAccess"],
            },
        ),
        call(
            T0 + 3 * HOUR_MS,
            "RunInstances",
            "Ecs",
            ATTACKER_2,
            errorCode="QuotaExceed.ElasticQuota",
            errorMessage="quota exceeded",
        ),
        call(T0 + 3 * HOUR_MS + 30_000, "RunInstances", "Ecs", ATTACKER_2),
        call(
            T0 + 4 * HOUR_MS,
            "StopLogging",
            "Actiontrail",
            ATTACKER_2,
            errorCode="NoPermission",
            errorMessage="You are not authorized",
        ),
    ]
    # Noise that must stay out: another key of the account, and the same key id in another account.
    events.append(
        ev(900, iso(T0 + HOUR_MS), name="CreateUser", service="Ram", ip=ATTACKER_1, key="LTAIother")
    )
    events.append(
        ev(
            901,
            iso(T0 + HOUR_MS),
            name="CreateUser",
            service="Ram",
            ip="6.6.6.6",
            key=LEAK_KEY,
            account=OTHER,
        )
    )
    return events


def test_report_tells_the_leak_story(backend_store: EventStore) -> None:
    events = leak_story()
    rnd = random.Random(3)
    shuffled = events[:]
    rnd.shuffle(shuffled)  # arrival order must not matter
    put(backend_store, *shuffled)
    report = key_report.build_report(
        backend_store,
        account_id=ACCOUNT,
        access_key_id=LEAK_KEY,
        since_ms=T0 - 2 * DAY_MS,
        now_ms=T0 + DAY_MS,
    )
    ours = [
        e
        for e in events
        if e["userIdentity"]["accessKeyId"] == LEAK_KEY
        and e["userIdentity"]["accountId"] == ACCOUNT
        and T0 - 2 * DAY_MS <= parse_wire_time(e["eventTime"]) <= T0 + DAY_MS
    ]
    assert report.total_calls == len(ours) == 11  # 3 office calls + 8 by the attackers
    assert report.failed_calls == 2
    first_bad = report.first_use_from_new_ip
    assert first_bad is not None
    assert (first_bad.event_name, first_bad.source_ip, first_bad.event_time_ms) == (
        "GetCallerIdentity",
        ATTACKER_1,
        T0,
    )
    assert [a.ip for a in report.new_ips] == [ATTACKER_1, ATTACKER_2]
    office = next(a for a in report.ips if a.ip == OFFICE)
    assert not office.new and office.first_seen_ever_ms == T0 - 21 * DAY_MS - 2 * HOUR_MS
    assert office.first_seen_ms > report.since_ms
    attacker = next(a for a in report.ips if a.ip == ATTACKER_1)
    assert (attacker.calls, attacker.failed_calls, attacker.services) == (5, 0, ("Sts", "Ram"))
    assert [(d.event_name, d.source_ip) for d in report.dangerous] == [
        ("CreateUser", ATTACKER_1),
        ("CreateAccessKey", ATTACKER_1),
        ("AttachPolicyToUser", ATTACKER_1),
        ("RunInstances", ATTACKER_2),
        ("RunInstances", ATTACKER_2),
        ("StopLogging", ATTACKER_2),
    ]
    assert report.dangerous_total == 6 and all(d.reason for d in report.dangerous)
    assert [(f.event_name, f.error_code) for f in report.failed] == [
        ("RunInstances", "QuotaExceed.ElasticQuota"),
        ("StopLogging", "NoPermission"),
    ]
    assert report.first_use is not None and report.first_use.source_ip == OFFICE
    assert report.first_use.event_time_ms == T0 - DAY_MS - 2 * HOUR_MS
    assert report.last_use is not None and report.last_use.event_name == "StopLogging"
    assert {s.service_name for s in report.services} == {"Ecs", "Oss", "Sts", "Ram", "Actiontrail"}
    ram = next(s for s in report.services if s.service_name == "Ram")
    assert (ram.calls, ram.service_name_en) == (4, "Resource Access Management")
    assert ("ACS::RAM::User", "backup-admin") in {
        (r.resource_type, r.resource_name) for r in report.resources
    }
    assert report.identities == ("ram-user:deploy-bot",)
    # The chart data adds up to the calls of each IP.
    for series in report.hourly:
        ip = next(a for a in report.ips if a.ip == series.ip)
        assert sum(n for _, n in series.counts) == ip.calls
        assert all(hour % HOUR_MS == 0 for hour, _ in series.counts)


def test_report_renderers_escape_and_stay_self_contained() -> None:
    with sqlite_store() as store:
        put(store, *leak_story())
        report = key_report.build_report(
            store, account_id=ACCOUNT, access_key_id=LEAK_KEY, since_ms=T0 - 2 * DAY_MS, now_ms=T0 + DAY_MS
        )
        empty = key_report.build_report(
            store, account_id=ACCOUNT, access_key_id="LTAInever", since_ms=0, now_ms=NOW
        )
    data = report_to_json(report)
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["firstUseFromNewIp"]["sourceIpAddress"] == ATTACKER_1
    assert [d["eventName"] for d in data["dangerous"]][:3] == [
        "CreateUser",
        "CreateAccessKey",
        "AttachPolicyToUser",
    ]

    page = report_to_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<rect" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for external in ("src=", "@import", "url("):
        assert external not in page
    # Links stay inside the page (anchors of IPs and created things), never outside it.
    assert re.findall(r'href="([^"]*)"', page) and all(
        h.startswith("#") for h in re.findall(r'href="([^"]*)"', page)
    )
    assert ATTACKER_1 in page and "backup-admin" in page

    console = Console(record=True, width=220, color_system=None)
    report_to_table(report, console)
    text = console.export_text()
    assert "[bold red]pwn[/]" in text  # attacker text shown literally, never as markup
    assert "StopLogging" in text and ATTACKER_2 in text

    assert not empty.used and empty.first_use is None and report_to_json(empty)["ips"] == []
    assert "No calls in the window" in report_to_html(empty)
    report_to_table(empty, Console(record=True, width=120))


def test_long_windows_share_chart_columns() -> None:
    with sqlite_store() as store:
        put(store, *(ev(i, iso(NOW - i * 5 * DAY_MS), ip=f"10.0.{i % 12}.1") for i in range(80)))
        report = key_report.build_report(
            store, account_id=ACCOUNT, access_key_id=KEYS[0], since_ms=NOW - 400 * DAY_MS, now_ms=NOW
        )
    assert report.total_calls == 80 and len(report.ips) == 12
    page = report_to_html(report)
    # 395 days of hours do not fit 720 columns; 9 series (8 IPs and "other IPs") keep the legend short.
    assert "Calls per 14 hours (UTC)." in page and "other IPs (4)" in page
    assert page.count("<rect") == 80
