"""The Insights operations through the official SDKs against a real server: every operation, its
parameters and response fields, and every error code it documents.

The tea 2020-07-06 SDK is driven through its generated methods and models (``enable_insight``,
``LookupInsightEventsRequest``…); aliyunsdkcore has no Insights request classes in
aliyun-python-sdk-actiontrail, so it goes through its ``CommonRequest``, as a user of it would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import SDK_VARIANTS, SdkClient, SdkVariant, Tenant
from trailhouse.model.event import event_from_mapping
from trailhouse.model.insights import StoredInsight
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.model.trail import EventRW, Trail, TrailStatus
from trailhouse.service.insights.detector import DETECTOR_NAME
from trailhouse.service.insights.record import Statistics, insight_pair
from trailhouse.storage.base import DetectorCheckpoint

pytestmark = pytest.mark.e2e

MakeTenant = Callable[..., Tenant]
MakeClient = Callable[..., SdkClient]
VARIANTS = [v for v in SDK_VARIANTS if v.version == "2020-07-06" and v.signature_algorithm != "ACS3-HMAC-SM3"]
DAY_MS = 86_400_000


@pytest.fixture(params=VARIANTS, ids=[v.id for v in VARIANTS])
def sdk_variant(request: pytest.FixtureRequest) -> SdkVariant:
    variant: SdkVariant = request.param
    return variant


class Insights:
    """The seven operations through one SDK client: generated methods for tea, CommonRequest for core."""

    def __init__(self, client: SdkClient) -> None:
        self.client = client
        self.tea = client.variant.family == "tea"

    def _tea(self, method: str, request: Any = None) -> dict[str, Any]:
        fn = getattr(self.client.client, method)  # type: ignore[attr-defined]
        response = fn(request) if request is not None else fn()
        assert response.status_code == 200
        body: dict[str, Any] = response.body.to_map()
        assert body["RequestId"]
        return body

    def _core(self, action: str, query: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = self.client.call(action, "2020-07-06", query)
        return body

    def enable(self, kind: str | None) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            return self._tea("enable_insight", m.EnableInsightRequest(insight_type=kind))
        return self._core("EnableInsight", {"InsightType": kind} if kind else {})

    def disable(self, kind: str) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            return self._tea("disable_insight", m.DisableInsightRequest(insight_type=kind))
        return self._core("DisableInsight", {"InsightType": kind})

    def types(self) -> dict[str, Any]:
        if self.tea:
            return dict(self._tea("get_insight_types")["InsightTypes"])
        return dict(self._core("GetInsightTypes", {})["InsightTypes"])

    def put_selectors(self, trail: str | None, selectors: str) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            request = m.PutInsightSelectorsRequest(trail_name=trail, insight_selectors=selectors)
            return self._tea("put_insight_selectors", request)
        return self._core(
            "PutInsightSelectors", {"InsightSelectors": selectors, **({"TrailName": trail} if trail else {})}
        )

    def get_selectors(self, trail: str) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            return self._tea("get_insight_selectors", m.GetInsightSelectorsRequest(trail_name=trail))
        return self._core("GetInsightSelectors", {"TrailName": trail})

    def count(self, **params: str) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            request = m.GetInsightsEventsCountRequest(
                date=params.get("Date"), start_time=params.get("StartTime"), end_time=params.get("EndTime")
            )
            return self._tea("get_insights_events_count", request)
        return self._core("GetInsightsEventsCount", params)

    def lookup(
        self,
        attributes: list[tuple[str, str]] = (),
        **params: str,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        from alibabacloud_actiontrail20200706 import models as m

        if self.tea:
            request = m.LookupInsightEventsRequest(
                start_time=params.get("StartTime"),
                end_time=params.get("EndTime"),
                max_results=params.get("MaxResults"),
                next_token=params.get("NextToken"),
                lookup_attribute=[
                    m.LookupInsightEventsRequestLookupAttribute(key=k, value=v) for k, v in attributes
                ],
            )
            return self._tea("lookup_insight_events", request)
        query = dict(params)
        for n, (k, v) in enumerate(attributes, 1):
            query[f"LookupAttribute.{n}.Key"] = k
            query[f"LookupAttribute.{n}.Value"] = v
        return self._core("LookupInsightEvents", query)


@pytest.fixture
def insights(
    live_server: LiveServer, sdk_client: MakeClient, make_tenant: MakeTenant
) -> tuple[Insights, Tenant]:
    tenant = make_tenant(live_server, events=1)
    return Insights(sdk_client(live_server, tenant)), tenant


def _store_insights(
    server: LiveServer, account: str, count: int, *, kind: str = "IpInsight", base: int | None = None
) -> list[StoredInsight]:
    """``count`` point insights a minute apart, newest last, stored as the detector would."""
    rows: list[StoredInsight] = []
    base = now_ms() - count * 60_000 if base is None else base
    for n in range(count):
        rows += insight_pair(
            account_id=account,
            insight_type=kind,
            insight_object=f"198.51.100.{n}",
            anchor=f"{account}-{n}",
            time_ms=base + n * 60_000,
            region="cn-hangzhou",
            statistics=Statistics(1, 0, 0, 0, 1),
            attributions=[],
            triggers=[f"trigger-{n}"],
            explanation="test",
            trigger=None,
        )
    store, name = server.store, f"fixture-{uuid.uuid4()}"  # a writer of its own, not the server's detector
    assert store.take_detector_lease(detector=name, owner=name, now_ms=now_ms(), ttl_ms=60_000)
    store.commit_insights(rows, detector=name, owner=name, checkpoint=DetectorCheckpoint(0, b""))
    return rows


# ---------------------------------------------------------------------------------------- success


def test_enable_disable_and_get_types(insights: tuple[Insights, Tenant]) -> None:
    api, _ = insights
    assert api.types() == dict.fromkeys(
        (
            "IpInsight",
            "ApiCallRateInsight",
            "ApiErrorRateInsight",
            "AkInsight",
            "PolicyChangeInsight",
            "PasswordChangeInsight",
            "TrailConcealmentInsight",
        ),
        False,
    )
    assert set(api.enable("IpInsight")) == {"RequestId"}
    api.enable("AkInsight")
    api.disable("IpInsight")
    types = api.types()
    assert types["AkInsight"] is True and types["IpInsight"] is False


def _add_trail(server: LiveServer, account_id: str, name: str) -> None:
    trail = Trail(
        account_id,
        name,
        "cn-hangzhou",
        "All",
        EventRW.WRITE,
        TrailStatus.FRESH,
        oss_bucket_name=f"b-{uuid.uuid4().hex}",
    )
    assert server.store.create_trail(trail, max_per_region=5, max_organization=1) is None


def test_put_and_get_selectors(live_server: LiveServer, insights: tuple[Insights, Tenant]) -> None:
    api, tenant = insights
    _add_trail(live_server, tenant.account_id, "audit")
    put = api.put_selectors("audit", '[{"InsightType":"IpInsight"},{"InsightType":"ApiCallRateInsight"}]')
    assert put["InsightSelectors"] == ["IpInsight", "ApiCallRateInsight"]
    assert put["TrailArn"] == f"acs:actiontrail:cn-hangzhou:{tenant.account_id}:trail/audit"
    got = api.get_selectors("audit")
    assert got["InsightSelectors"] == ["IpInsight", "ApiCallRateInsight"]
    assert got["TrailArn"] == put["TrailArn"]
    _add_trail(live_server, tenant.account_id, "other")
    assert api.get_selectors("other")["InsightSelectors"] == []


def test_selectors_of_a_trail_that_does_not_exist(insights: tuple[Insights, Tenant]) -> None:
    api, _ = insights
    err = api.client.expect_error(lambda: api.put_selectors("nowhere", '["IpInsight"]'))
    assert (err.code, err.status) == ("TrailNotFoundException", 404)
    err = api.client.expect_error(lambda: api.get_selectors("nowhere"))
    assert (err.code, err.status) == ("TrailNotFoundException", 404)


def test_lookup_pages_filters_and_counts(live_server: LiveServer, insights: tuple[Insights, Tenant]) -> None:
    api, tenant = insights
    rows = _store_insights(live_server, tenant.account_id, 12)
    starts = [r for r in rows if r.state == "Start"]

    first = api.lookup(MaxResults="10")
    assert len(first["Events"]) == 10 and first["NextToken"]
    pages = [first]
    while pages[-1].get("NextToken"):
        pages.append(api.lookup(MaxResults="10", NextToken=pages[-1]["NextToken"]))
    assert [len(p["Events"]) for p in pages] == [10, 10, 4]
    seen = [e["eventId"] for p in pages for e in p["Events"]]
    assert len(set(seen)) == 24 and set(seen) == {r.insight_id for r in rows}
    newest = first["Events"][0]
    assert newest["eventType"] == "ActionTrailInsight" and newest["eventCategory"] == "Insight"
    assert newest["insightDetails"]["insightType"] == "IpInsight"
    assert set(newest["insightDetails"]["insightContext"]["statistics"]) == {
        "insight",
        "insightDuration",
        "baseline",
        "baselineDuration",
        "insightCount",
    }

    default_page = api.lookup()
    assert len(default_page["Events"]) == 20  # MaxResults defaults to 20

    one = api.lookup([("InsightObject", "198.51.100.3"), ("InsightType", "IpInsight")])
    assert {e["sharedEventId"] for e in one["Events"]} == {starts[3].shared_id}
    by_id = api.lookup([("EventId", starts[5].insight_id)])
    assert [e["eventId"] for e in by_id["Events"]] == [starts[5].insight_id]
    assert api.lookup([("InsightType", "AkInsight")])["Events"] == []

    data = api.count()["Data"]
    assert data == [{"Count": 12, "InsightType": "IpInsight", "RegionId": "cn-hangzhou"}]
    today = format_wire_time(now_ms())[:10]
    assert (
        api.count(Date=today)["Data"] in ([], data)
        or sum(d["Count"] for d in api.count(Date=today)["Data"]) <= 12
    )


def test_a_span_over_93_days_is_cut_to_its_last_93(
    live_server: LiveServer, insights: tuple[Insights, Tenant]
) -> None:
    api, tenant = insights
    end = now_ms()
    old = _store_insights(live_server, tenant.account_id, 1, base=end - 100 * DAY_MS)
    kept = _store_insights(live_server, tenant.account_id, 1, base=end - 50 * DAY_MS, kind="AkInsight")
    reply = api.lookup(StartTime=format_wire_time(end - 200 * DAY_MS), EndTime=format_wire_time(end))
    assert {e["eventId"] for e in reply["Events"]} == {r.insight_id for r in kept}
    assert not {r.insight_id for r in old} & {e["eventId"] for e in reply["Events"]}
    assert set(reply) <= {"RequestId", "Events", "NextToken"}
    # Without StartTime, the last 7 days: neither.
    assert api.lookup()["Events"] == []


def test_the_detector_of_the_server_raises_and_explains(
    live_server: LiveServer, insights: tuple[Insights, Tenant]
) -> None:
    api, tenant = insights
    api.enable("TrailConcealmentInsight")
    # The detector (in the server's worker process) starts from the log's head once a type is
    # enabled; on a store where it already runs, from its checkpoint.
    deadline = time.monotonic() + 60
    while live_server.store.detector_checkpoint(detector=DETECTOR_NAME) is None:
        assert time.monotonic() < deadline, "the server's detector did not start"
        time.sleep(0.1)
    event = {
        "eventId": f"stop-{uuid.uuid4()}",
        "eventVersion": "1",
        "eventTime": format_wire_time(now_ms()),
        "eventName": "StopLogging",
        "eventType": "ApiCall",
        "eventRW": "Write",
        "serviceName": "Actiontrail",
        "sourceIpAddress": "203.0.113.9",
        "acsRegion": "cn-hangzhou",
        "requestParameters": {"Name": "audit"},
        "userIdentity": {
            "type": "ram-user",
            "accountId": tenant.account_id,
            "userName": "mallory",
            "accessKeyId": "LTAImallory0000000000",
        },
    }
    live_server.store.append([event_from_mapping(event)])
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = api.lookup([("InsightType", "TrailConcealmentInsight")])["Events"]
        time.sleep(0.5)
    assert found, "no insight within 60 s"
    start = next(e for e in found if e["insightDetails"]["state"] == "Start")
    assert start["triggeringEventIds"] == [event["eventId"]]
    assert start["insightDetails"]["insightObject"] == "audit"
    assert "StopLogging" in start["explanation"]


# ----------------------------------------------------------------------------------------- errors


def test_error_codes(insights: tuple[Insights, Tenant]) -> None:
    api, _ = insights
    c = api.client
    err = c.expect_error(lambda: api.enable("NoSuchInsight"))
    assert (err.code, err.status) == ("InsightTypeNotValid", 400)
    err = c.expect_error(lambda: api.disable("ipinsight"))
    assert (err.code, err.status) == ("InsightTypeNotValid", 400)
    err = c.expect_error(lambda: api.enable(None))
    assert (err.code, err.status) == ("MissingInsightType", 400)
    err = c.expect_error(lambda: api.put_selectors("t", '["IpInsight","Nope"]'))
    assert (err.code, err.status) == ("InsightTypeNotValid", 400)
    err = c.expect_error(lambda: api.put_selectors("t", "[not json"))
    assert (err.code, err.status) == ("InvalidInsightSelectors", 400)
    err = c.expect_error(lambda: api.put_selectors(None, '["IpInsight"]'))
    assert (err.code, err.status) == ("MissingTrailName", 400)
    err = c.expect_error(lambda: api.lookup([("InsightType", "Nope")]))
    assert (err.code, err.status) == ("InsightTypeNotValid", 400)
    err = c.expect_error(lambda: api.lookup([("UserName", "x")]))
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)
    err = c.expect_error(lambda: api.lookup(MaxResults="51"))
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)
    err = c.expect_error(lambda: api.lookup(StartTime="yesterday"))
    assert (err.code, err.status) == ("InvalidParameterStartTime", 400)
    err = c.expect_error(lambda: api.lookup(EndTime="2026-13-01T00:00:00Z"))
    assert (err.code, err.status) == ("InvalidParameterEndTime", 400)
    now = now_ms()
    err = c.expect_error(
        lambda: api.lookup(StartTime=format_wire_time(now), EndTime=format_wire_time(now - DAY_MS))
    )
    assert (err.code, err.status) == ("InvalidParameterCombination", 400)
    err = c.expect_error(lambda: api.lookup(NextToken="forged"))
    assert (err.code, err.status) == ("InvalidQueryParameter", 400)
    err = c.expect_error(lambda: api.count(Date="06/12/2026"))
    assert (err.code, err.status) == ("InvalidParameter", 400)


def test_a_type_the_server_does_not_offer_is_not_available(
    server_factory: Callable[..., LiveServer],
    backend_url: str,
    sdk_client: MakeClient,
    make_tenant: MakeTenant,
) -> None:
    server = server_factory(db_url=backend_url, insight_types="IpInsight,AkInsight", insights_detector="off")
    api = Insights(sdk_client(server, make_tenant(server, events=1)))
    err = api.client.expect_error(lambda: api.enable("PolicyChangeInsight"))
    assert (err.code, err.status) == ("InsightTypeNotAvailable", 400)
    assert api.types() == {"IpInsight": False, "AkInsight": False}
