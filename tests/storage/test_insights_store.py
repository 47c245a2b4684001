"""The Insights part of the store contract (InsightStore), on both backends."""

from __future__ import annotations

import pytest

from trailhouse.model.insights import InsightAttr, InsightPosition, InsightQuery, StoredInsight
from trailhouse.model.query import Attr, EventFilter
from trailhouse.model.trail import EventRW, Trail, TrailStatus
from trailhouse.storage.base import DetectorCheckpoint, EventStore, LeaseLost

from .conftest import ACCOUNT, OTHER_ACCOUNT, Backend, at, record


def insight(
    n: int, *, account: str = ACCOUNT, kind: str = "IpInsight", state: str = "Start", **kw: str
) -> StoredInsight:
    return StoredInsight(
        account_id=account,
        insight_id=f"id-{n}-{state}",
        shared_id=f"shared-{n}",
        insight_type=kind,
        state=state,
        event_time_ms=at("10:00:00") + n * 1000,
        region=kw.get("region", "cn-hangzhou"),
        insight_object=kw.get("obj", f"203.0.113.{n}"),
        body=b'{"n":%d}' % n,
        service_name=kw.get("service", "Ecs"),
        event_name=kw.get("name", "DescribeInstances"),
        source_ip=kw.get("ip", f"203.0.113.{n}"),
        access_key_id=kw.get("key", "LTAIalice"),
    )


def lease(store: EventStore, owner: str = "node-a") -> None:
    assert store.take_detector_lease(detector="d", owner=owner, now_ms=1000, ttl_ms=30_000)


def test_types_are_enabled_and_disabled_per_account(store: EventStore) -> None:
    assert store.insight_types_enabled(account_id=ACCOUNT) == []
    store.set_insight_type(account_id=ACCOUNT, insight_type="IpInsight", enabled=True, now_ms=1)
    store.set_insight_type(account_id=ACCOUNT, insight_type="AkInsight", enabled=True, now_ms=1)
    store.set_insight_type(account_id=OTHER_ACCOUNT, insight_type="AkInsight", enabled=True, now_ms=1)
    store.set_insight_type(account_id=ACCOUNT, insight_type="IpInsight", enabled=False, now_ms=2)
    assert store.insight_types_enabled(account_id=ACCOUNT) == ["AkInsight"]
    assert store.all_enabled_insight_types() == {
        ACCOUNT: frozenset({"AkInsight"}),
        OTHER_ACCOUNT: frozenset({"AkInsight"}),
    }


def _trail(account_id: str, name: str) -> Trail:
    return Trail(
        account_id,
        name,
        "cn-hangzhou",
        "All",
        EventRW.WRITE,
        TrailStatus.FRESH,
        oss_bucket_name=f"b-{account_id}",
    )


def test_selectors_are_kept_per_account_and_trail(store: EventStore) -> None:
    assert store.create_trail(_trail(ACCOUNT, "t"), max_per_region=5, max_organization=1) is None
    assert store.get_insight_selectors(account_id=ACCOUNT, trail_name="t") is None
    assert store.put_insight_selectors(account_id=ACCOUNT, trail_name="t", selectors=["IpInsight"], now_ms=1)
    assert store.put_insight_selectors(
        account_id=ACCOUNT, trail_name="t", selectors=["AkInsight", "IpInsight"], now_ms=2
    )
    assert store.get_insight_selectors(account_id=ACCOUNT, trail_name="t") == ["AkInsight", "IpInsight"]
    assert store.get_insight_selectors(account_id=OTHER_ACCOUNT, trail_name="t") is None


def test_selectors_need_the_trail_and_go_with_it(store: EventStore) -> None:
    # Another account's trail of the same name does not count.
    assert store.create_trail(_trail(OTHER_ACCOUNT, "t"), max_per_region=5, max_organization=1) is None
    assert not store.put_insight_selectors(
        account_id=ACCOUNT, trail_name="t", selectors=["IpInsight"], now_ms=1
    )
    assert not store.put_insight_selectors(account_id=ACCOUNT, trail_name="t\x00", selectors=[], now_ms=1)
    assert store.get_insight_selectors(account_id=ACCOUNT, trail_name="t") is None
    assert store.create_trail(_trail(ACCOUNT, "t"), max_per_region=5, max_organization=1) is None
    assert store.put_insight_selectors(account_id=ACCOUNT, trail_name="t", selectors=["IpInsight"], now_ms=1)
    assert store.delete_trail(account_id=ACCOUNT, name="t")
    assert store.get_insight_selectors(account_id=ACCOUNT, trail_name="t") is None
    # A trail created again under the name starts with none.
    assert store.create_trail(_trail(ACCOUNT, "t"), max_per_region=5, max_organization=1) is None
    assert store.get_insight_selectors(account_id=ACCOUNT, trail_name="t") is None
    assert store.get_insight_selectors(account_id=OTHER_ACCOUNT, trail_name="t") is None


def test_commit_stores_each_insight_once_with_the_checkpoint(store: EventStore) -> None:
    lease(store)
    assert store.detector_checkpoint(detector="d") is None
    added = store.commit_insights(
        [insight(1), insight(2)], detector="d", owner="node-a", checkpoint=DetectorCheckpoint(7, b"s1")
    )
    assert added == 2
    # A replay (the same ids) adds nothing, and the checkpoint still moves.
    again = store.commit_insights(
        [insight(2), insight(3)], detector="d", owner="node-a", checkpoint=DetectorCheckpoint(9, b"s2")
    )
    assert again == 1
    assert store.detector_checkpoint(detector="d") == DetectorCheckpoint(9, b"s2")
    window = InsightQuery(at("00:00:00"), at("23:59:59"))
    found = store.find_insights(account_id=ACCOUNT, query=window, after=None, limit=10)
    assert [i.insight_id for _, i in found] == ["id-3-Start", "id-2-Start", "id-1-Start"]
    assert found[0][1] == insight(3)
    assert store.find_insights(account_id=OTHER_ACCOUNT, query=window, after=None, limit=10) == []


def test_a_lost_lease_stores_nothing(backend: Backend) -> None:
    a, b = backend.open(), backend.open()
    assert a.take_detector_lease(detector="d", owner="node-a", now_ms=1000, ttl_ms=30_000)
    assert not b.take_detector_lease(detector="d", owner="node-b", now_ms=2000, ttl_ms=30_000)
    # The lease expires unrenewed: node-b takes it, and node-a's commit is refused whole.
    assert b.take_detector_lease(detector="d", owner="node-b", now_ms=40_000, ttl_ms=30_000)
    with pytest.raises(LeaseLost):
        a.commit_insights([insight(1)], detector="d", owner="node-a", checkpoint=DetectorCheckpoint(5, b""))
    window = InsightQuery(at("00:00:00"), at("23:59:59"))
    assert b.find_insights(account_id=ACCOUNT, query=window, after=None, limit=10) == []
    assert b.detector_checkpoint(detector="d") is None
    assert b.take_detector_lease(detector="d", owner="node-b", now_ms=41_000, ttl_ms=30_000)


def test_find_filters_and_pages_newest_first(store: EventStore) -> None:
    lease(store)
    rows = [insight(n, kind="AkInsight" if n % 2 else "IpInsight", key=f"LTAI{n % 3}") for n in range(1, 8)]
    rows.append(insight(9, account=OTHER_ACCOUNT))
    store.commit_insights(rows, detector="d", owner="node-a", checkpoint=DetectorCheckpoint(1, b""))
    window = InsightQuery(at("00:00:00"), at("23:59:59"))
    pages: list[str] = []
    after: InsightPosition | None = None
    while True:
        page = store.find_insights(account_id=ACCOUNT, query=window, after=after, limit=3)
        pages += [i.insight_id for _, i in page]
        if len(page) < 3:
            break
        after = page[-1][0]
    assert pages == [f"id-{n}-Start" for n in range(7, 0, -1)]
    both = InsightQuery(
        window.start_ms,
        window.end_ms,
        {InsightAttr.INSIGHT_TYPE: "AkInsight", InsightAttr.ACCESS_KEY_ID: "LTAI1"},
    )
    assert [
        i.insight_id for _, i in store.find_insights(account_id=ACCOUNT, query=both, after=None, limit=10)
    ] == [
        "id-7-Start",
        "id-1-Start",
    ]
    narrow = InsightQuery(at("10:00:02"), at("10:00:04"))
    assert len(store.find_insights(account_id=ACCOUNT, query=narrow, after=None, limit=10)) == 3


def test_counts_are_start_records_by_type_and_region(store: EventStore) -> None:
    lease(store)
    rows = [
        insight(1),
        insight(1, state="End"),
        insight(2, region="cn-beijing"),
        insight(3, kind="AkInsight"),
        insight(4, account=OTHER_ACCOUNT),
    ]
    store.commit_insights(rows, detector="d", owner="node-a", checkpoint=DetectorCheckpoint(1, b""))
    counts = store.count_insights(account_id=ACCOUNT, start_ms=at("00:00:00"), end_ms=at("23:59:59"))
    assert [(c.insight_type, c.region, c.count) for c in counts] == [
        ("AkInsight", "cn-hangzhou", 1),
        ("IpInsight", "cn-beijing", 1),
        ("IpInsight", "cn-hangzhou", 1),
    ]


def test_log_head_and_count_matching(store: EventStore) -> None:
    assert store.newest_seq() == 0
    store.append([record(f"e{n}", f"10:0{n}:00", accessKeyId=None) for n in range(5)])
    store.append([record("x", "11:00:00", eventName="DeleteInstance")])
    assert store.newest_seq() == max(e.seq for e in store.read_log(after_seq=0, limit=100))
    day = EventFilter(at("00:00:00"), at("23:59:59"))
    assert store.count_matching(account_id=ACCOUNT, flt=day, cap=100) == 6
    assert store.count_matching(account_id=ACCOUNT, flt=day, cap=4) == 4
    by_key = EventFilter(day.start_ms, day.end_ms, equals={Attr.ACCESS_KEY_ID: ("LTAIalice",)})
    assert store.count_matching(account_id=ACCOUNT, flt=by_key, cap=100) == 6
    named = EventFilter(day.start_ms, day.end_ms, equals={Attr.EVENT_NAME: ("DeleteInstance",)})
    assert store.count_matching(account_id=ACCOUNT, flt=named, cap=100) == 1
    assert store.count_matching(account_id=OTHER_ACCOUNT, flt=day, cap=100) == 0


def test_records_after_a_ref_come_in_the_order_they_were_stored(store: EventStore) -> None:
    """What a trail's insight delivery follows: each account's records by ref, the cursor a ref."""
    lease(store)
    assert store.last_insight_ref(account_id=ACCOUNT) == 0
    assert store.insights_after(account_id=ACCOUNT, after_ref=0, limit=10) == []
    # Stored out of event-time order: the later commit comes later, whatever its eventTime.
    store.commit_insights(
        [insight(5), insight(6, account=OTHER_ACCOUNT)],
        detector="d",
        owner="node-a",
        checkpoint=DetectorCheckpoint(1, b""),
    )
    store.commit_insights(
        [insight(1, state="End"), insight(5)],
        detector="d",
        owner="node-a",
        checkpoint=DetectorCheckpoint(2, b""),
    )
    found = store.insights_after(account_id=ACCOUNT, after_ref=0, limit=10)
    assert [i.insight_id for _, i in found] == ["id-5-Start", "id-1-End"]
    refs = [ref for ref, _ in found]
    assert refs == sorted(refs) and store.last_insight_ref(account_id=ACCOUNT) == refs[-1]
    assert found[1][1] == insight(1, state="End")
    assert [
        i.insight_id for _, i in store.insights_after(account_id=ACCOUNT, after_ref=refs[0], limit=10)
    ] == ["id-1-End"]
    assert store.insights_after(account_id=ACCOUNT, after_ref=0, limit=1) == found[:1]
    assert [
        i.account_id for _, i in store.insights_after(account_id=OTHER_ACCOUNT, after_ref=0, limit=10)
    ] == [OTHER_ACCOUNT]
