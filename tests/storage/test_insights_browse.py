"""``service.insights.browse`` (the console's Insights pages) over both backends.

Records are made by the detector's own builders (``insight_pair``, ``insight_record``), so their
ids derive from the shared id exactly as the detector's do.
"""

from __future__ import annotations

import pytest

from trailhouse.model.insights import InsightAttr, InsightQuery, StoredInsight
from trailhouse.service.insights.browse import find_episode, insights_status, list_episodes
from trailhouse.service.insights.lookup import InsightRejected
from trailhouse.service.insights.record import Statistics, insight_pair, insight_record
from trailhouse.service.pagetoken import PageTokens
from trailhouse.storage.base import DetectorCheckpoint, EventStore

from .conftest import ACCOUNT, OTHER_ACCOUNT, at

STATS = Statistics(1, 0, 0, 60, 1)


def _pair(n: int, account: str = ACCOUNT, kind: str = "IpInsight") -> list[StoredInsight]:
    return insight_pair(
        account_id=account,
        insight_type=kind,
        insight_object=f"203.0.113.{n}",
        anchor=f"event-{n}",
        time_ms=at("10:00:00") + n * 60_000,
        region="cn-hangzhou",
        statistics=STATS,
        attributions=[],
        triggers=[f"event-{n}"],
        explanation=f"insight {n}",
        trigger=None,
    )


def _open_rate(n: int) -> StoredInsight:
    """A rate insight still open: its Start only."""
    return insight_record(
        account_id=ACCOUNT,
        insight_type="ApiCallRateInsight",
        insight_object="Ecs:DeleteSnapshot",
        anchor=f"minute-{n}",
        state="Start",
        time_ms=at("10:00:00") + n * 60_000,
        region="cn-hangzhou",
        statistics=Statistics(40, 1, 0.1, 20160, 40),
        attributions=[],
        triggers=[],
        explanation="rate",
        trigger=None,
    )


def _store(store: EventStore, records: list[StoredInsight]) -> None:
    assert store.take_detector_lease(detector="insights", owner="t", now_ms=1000, ttl_ms=30_000)
    store.commit_insights(records, detector="insights", owner="t", checkpoint=DetectorCheckpoint(0, b""))


@pytest.fixture
def filled(store: EventStore) -> EventStore:
    records = [r for n in range(6) for r in _pair(n)] + [_open_rate(6)] + _pair(7, account=OTHER_ACCOUNT)
    _store(store, records)
    return store


def test_an_insight_is_found_by_either_record_or_its_shared_id_in_its_account_only(
    filled: EventStore,
) -> None:
    start, end = _pair(3)
    for wanted in (start.insight_id, end.insight_id, start.shared_id, start.shared_id.lower()):
        found = find_episode(filled, account_id=ACCOUNT, insight_id=wanted)
        assert found is not None and found.start == start and found.end == end
    other_start, _ = _pair(7, account=OTHER_ACCOUNT)
    for wanted in (other_start.insight_id, other_start.shared_id, "", "x" * 5000, "a\x00b", "not-an-id"):
        assert find_episode(filled, account_id=ACCOUNT, insight_id=wanted) is None
    rate = find_episode(filled, account_id=ACCOUNT, insight_id=_open_rate(6).insight_id)
    assert rate is not None and rate.ongoing and rate.record.state == "Start"


def test_episodes_page_newest_first_one_per_insight(filled: EventStore) -> None:
    tokens = PageTokens(b"k" * 32)
    query = InsightQuery(0, at("10:00:00") + 3_600_000)
    seen: list[StoredInsight] = []
    token = None
    pages = 0
    while True:
        page = list_episodes(
            filled,
            tokens,
            account_id=ACCOUNT,
            query=query,
            limit=2,
            next_token=token,
            digest="q",
            token_kind="t",
        )
        pages += 1
        seen += [e.record for e in page.episodes]
        token = page.next_token
        if token is None:
            break
    assert pages == 4
    assert [r.insight_id for r in seen] == [_open_rate(6).insight_id] + [
        _pair(n)[0].insight_id for n in range(5, -1, -1)
    ]
    # A position is bound to its account and its query.
    first = list_episodes(
        filled, tokens, account_id=ACCOUNT, query=query, limit=2, next_token=None, digest="q", token_kind="t"
    )
    assert first.next_token is not None
    for account, digest in ((OTHER_ACCOUNT, "q"), (ACCOUNT, "other")):
        with pytest.raises(InsightRejected):
            list_episodes(
                filled,
                tokens,
                account_id=account,
                query=query,
                limit=2,
                next_token=first.next_token,
                digest=digest,
                token_kind="t",
            )
    typed = InsightQuery(0, at("11:00:00"), {InsightAttr.INSIGHT_TYPE: "ApiCallRateInsight"})
    only = list_episodes(
        filled, tokens, account_id=ACCOUNT, query=typed, limit=50, next_token=None, digest="r", token_kind="t"
    )
    assert [e.ongoing for e in only.episodes] == [True]


def test_status_names_the_enabled_types_and_the_detectors_lag(store: EventStore) -> None:
    offered = ("IpInsight", "AkInsight")
    empty = insights_status(store, account_id=ACCOUNT, offered=offered)
    assert empty.enabled == () and empty.behind is None
    store.set_insight_type(account_id=ACCOUNT, insight_type="AkInsight", enabled=True, now_ms=1)
    store.set_insight_type(account_id=OTHER_ACCOUNT, insight_type="IpInsight", enabled=True, now_ms=1)
    _store(store, [])
    status = insights_status(store, account_id=ACCOUNT, offered=offered)
    assert status.enabled == ("AkInsight",) and status.offered == offered
    assert status.behind == store.newest_seq()
