"""GET /api/v1/insights over real HTTP, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from trailhouse.model.credentials import TokenScope
from trailhouse.model.times import now_ms
from trailhouse.service.credentials import create_token
from trailhouse.service.insights.record import Statistics, insight_pair
from trailhouse.storage.base import DetectorCheckpoint

A, B = "1000000000000001", "2000000000000002"


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], backend_url: str) -> LiveServer:
    srv = server_factory(db_url=backend_url, insights_detector="off")
    rows = []
    base = now_ms() - 3_600_000
    for n in range(7):
        for account in (A, B):
            rows += insight_pair(
                account_id=account,
                insight_type="IpInsight" if n % 2 else "AkInsight",
                insight_object=f"obj-{n}",
                anchor=str(n),
                time_ms=base + n * 1000,
                region="cn-hangzhou",
                statistics=Statistics(1, 0, 0, 0, 1),
                attributions=[],
                triggers=[f"ev-{n}"],
                explanation=f"insight {n}",
                trigger=None,
            )
    assert srv.store.take_detector_lease(detector="t", owner="t", now_ms=1, ttl_ms=10**9)
    srv.store.commit_insights(rows, detector="t", owner="t", checkpoint=DetectorCheckpoint(0, b""))
    return srv


def reader(server: LiveServer, *accounts: str) -> dict[str, str]:
    token = create_token(server.store, account_ids=accounts, all_accounts=False, scopes=(TokenScope.READ,))
    return {"authorization": f"Bearer {token.secret}"}


def get(server: LiveServer, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/insights", params=params, headers=headers, timeout=30)


def test_pages_newest_first_within_the_account(server: LiveServer) -> None:
    headers = reader(server, A)
    got: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = get(server, headers, limit=4, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["account"] == A
        got += body["insights"]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(got) == 14
    assert all(r["recipientAccountId"] == A for r in got)
    times = [r["eventTime"] for r in got]
    assert times == sorted(times, reverse=True)


def test_filters(server: LiveServer) -> None:
    headers = reader(server, A)
    body = get(server, headers, type="IpInsight").json()
    assert {r["insightDetails"]["insightType"] for r in body["insights"]} == {"IpInsight"}
    assert body["count"] == 6
    one = get(server, headers, object="obj-3").json()["insights"]
    assert {r["insightDetails"]["insightObject"] for r in one} == {"obj-3"} and len(one) == 2
    by_id = get(server, headers, id=one[0]["eventId"]).json()["insights"]
    assert [r["eventId"] for r in by_id] == [one[0]["eventId"]]


def test_refusals(server: LiveServer) -> None:
    headers = reader(server, A)
    assert get(server, headers, type="Nope").status_code == 400
    assert get(server, headers, limit=0).status_code == 400
    assert get(server, headers, color="red").status_code == 400
    assert get(server, headers, cursor="forged").status_code == 400
    assert get(server, {}).status_code == 401
    assert get(server, headers, account=B).status_code == 403


def test_openapi_describes_the_route(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30).json()
    assert "/api/v1/insights" in spec["paths"]
