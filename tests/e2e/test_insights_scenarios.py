"""A scenario per Insights type on a real server: weeks of normal traffic from the generator as
stored history, a day of it streamed "live" with an injected anomaly; the server's own detector
must raise that insight within 60 s of the anomaly's acknowledgement, name the injected events,
and raise nothing on the normal traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest
from bench.insight_traffic import DAY_MS, Anomaly, Traffic, anomaly, merged, normal_traffic

from tests.conftest import LiveServer
from trailhouse.model.event import event_from_mapping
from trailhouse.model.insights import INSIGHT_TYPES, InsightQuery
from trailhouse.model.times import now_ms
from trailhouse.service.insights.detector import DETECTOR_NAME

pytestmark = pytest.mark.e2e

DEADLINE_S = 60


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return normal_traffic(seed=11, count=20_000, end_ms=now_ms() - 5 * 60_000, days=21)


def _append(server: LiveServer, events: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(events), 2000):
        server.store.append([event_from_mapping(e) for e in events[start : start + 2000]])


def run_scenario(
    server: LiveServer, traffic: Traffic, anomalies: Sequence[Anomaly]
) -> tuple[list[dict[str, Any]], dict[int, float]]:
    """Store history, enable every type, stream the rest; the insights raised and each anomaly's latency."""
    store = server.store
    _append(
        server,
        sorted(traffic.history + [e for a in anomalies for e in a.history], key=lambda e: e["eventTime"]),
    )
    for kind in INSIGHT_TYPES:
        store.set_insight_type(
            account_id=traffic.account_id, insight_type=kind, enabled=True, now_ms=now_ms()
        )
    deadline = time.monotonic() + 30
    while store.detector_checkpoint(detector=DETECTOR_NAME) is None:
        assert time.monotonic() < deadline, "the server's detector did not start"
        time.sleep(0.1)
    acked: dict[int, float] = {}
    stream = merged(traffic.stream, anomalies)
    owner = {e["eventId"]: i for i, a in enumerate(anomalies) for e in a.events}
    for start in range(0, len(stream), 500):
        batch = stream[start : start + 500]
        _append(server, batch)
        ack = time.monotonic()
        for e in batch:
            if e["eventId"] in owner:
                acked.setdefault(owner[e["eventId"]], ack)
    seen_at: dict[int, float] = {}
    deadline = time.monotonic() + DEADLINE_S + 5
    insights: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = store.find_insights(
            account_id=traffic.account_id, query=InsightQuery(0, now_ms() + DAY_MS), after=None, limit=1000
        )
        insights = [orjson.loads(i.body) for _, i in found]
        for body in insights:
            for i, a in enumerate(anomalies):
                if i not in seen_at and a.ids & set(body["triggeringEventIds"]):
                    seen_at[i] = time.monotonic()
        checkpoint = store.detector_checkpoint(detector=DETECTOR_NAME)
        caught_up = checkpoint is not None and checkpoint.watermark >= store.newest_seq()
        if caught_up and len(seen_at) == len(anomalies):
            break
        time.sleep(0.2)
    return insights, {i: seen_at[i] - acked[i] for i in seen_at}


@pytest.mark.parametrize("kind", INSIGHT_TYPES)
def test_each_type_fires_on_its_anomaly_only(
    server_factory: Callable[..., LiveServer], backend_url: str, traffic: Traffic, kind: str
) -> None:
    server = server_factory(db_url=backend_url)
    injected = anomaly(kind, traffic, _middle(traffic))
    insights, latency = run_scenario(server, traffic, [injected])
    starts = [i for i in insights if i["insightDetails"]["state"] == "Start"]
    assert [s["insightDetails"]["insightType"] for s in starts] == [kind], [s["explanation"] for s in starts]
    start = starts[0]
    assert start["triggeringEventIds"] and set(start["triggeringEventIds"]) <= injected.ids
    assert start["explanation"]
    assert start["insightDetails"]["insightContext"]["statistics"]["insightCount"] >= 1
    assert latency[0] < DEADLINE_S


def _middle(traffic: Traffic) -> int:
    from trailhouse.model.times import parse_wire_time

    return parse_wire_time(traffic.stream[len(traffic.stream) // 2]["eventTime"]) + 1


def test_normal_traffic_raises_nothing(
    server_factory: Callable[..., LiveServer], backend_url: str, traffic: Traffic
) -> None:
    server = server_factory(db_url=backend_url)
    insights, _ = run_scenario(server, traffic, [])
    assert insights == []
