"""The GetAccessKeyLastUsed* wire handlers: parameters, errors, and the exact response keys of the SDK."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as sdk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailhouse.api.context import Services
from trailhouse.api.rpc.call import Call
from trailhouse.api.rpc.errors import ApiError
from trailhouse.api.rpc.operations.access_key_usage import (
    get_access_key_last_used_events,
    get_access_key_last_used_info,
    get_access_key_last_used_ips,
    get_access_key_last_used_products,
    get_access_key_last_used_resources,
)
from trailhouse.model.credentials import AccessKey, KeyStatus
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms, parse_wire_time
from trailhouse.service.pagetoken import PageTokens
from trailhouse.settings import Settings
from trailhouse.storage.sqlite import SqliteStore

NOW = parse_wire_time("2024-06-01T12:00:00Z")
ACCOUNT = "1000000000000001"
OTHER = "2000000000000002"
KEY = "LTAI4Fz1ykT4qxgNMvN6abcd"
Handler = Callable[[Call, Services], dict[str, Any]]
PAGED: dict[str, tuple[Handler, str]] = {
    "Ips": (get_access_key_last_used_ips, "Ip"),
    "Events": (get_access_key_last_used_events, "EventName"),
    "Resources": (get_access_key_last_used_resources, "ResourceName"),
}
SDK_BODIES = {
    "Ips": sdk.GetAccessKeyLastUsedIpsResponseBody,
    "Events": sdk.GetAccessKeyLastUsedEventsResponseBody,
    "Resources": sdk.GetAccessKeyLastUsedResourcesResponseBody,
    "Products": sdk.GetAccessKeyLastUsedProductsResponseBody,
    "Info": sdk.GetAccessKeyLastUsedInfoResponseBody,
}
ITEM_KEYS = {
    "Ips": {"Ip", "UsedTimestamp", "Source", "Detail"},
    "Events": {"EventName", "UsedTimestamp", "Source", "Detail"},
    "Resources": {"ResourceName", "ResourceType", "UsedTimestamp", "Source", "Detail"},
    "Products": {"ServiceName", "ServiceNameCn", "ServiceNameEn", "UsedTimestamp", "Source", "Detail"},
}
INFO_KEYS = {
    "AccessKeyId",
    "AccountId",
    "OwnerId",
    "UserName",
    "AccountType",
    "ServiceName",
    "ServiceNameCn",
    "ServiceNameEn",
    "UsedTimestamp",
    "Source",
    "Detail",
}


@contextmanager
def services() -> Iterator[Services]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "trail.db")
        try:
            yield Services(settings=Settings(), store=store, page_tokens=PageTokens.for_store(store))
        finally:
            store.close()


def call(params: dict[str, str], *, account: str = ACCOUNT, now: int = NOW, action: str = "X") -> Call:
    key = AccessKey("LTAIcaller", account, "auditor", b"", KeyStatus.ACTIVE, (), 0)
    return Call(action, "2020-07-06", params, account, key, "REQ-1", now)


def event(
    i: int,
    when: int,
    *,
    ip: str = "10.0.0.1",
    service: str = "Ecs",
    name: str = "DescribeInstances",
    account: str = ACCOUNT,
    key: str = KEY,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "eventId": f"e-{i}",
        "eventVersion": 1,
        "eventTime": format_wire_time(when),
        "eventName": name,
        "serviceName": service,
        "sourceIpAddress": ip,
        "eventType": "ApiCall",
        "userIdentity": {
            "accountId": account,
            "type": "ram-user",
            "principalId": "27",
            "userName": "alice",
            "accessKeyId": key,
        },
        **extra,
    }


def put(svc: Services, *events: dict[str, Any]) -> None:
    svc.store.append([event_from_mapping(e) for e in events])


def sdk_roundtrip(name: str, body: dict[str, Any]) -> None:
    """The SDK model reads every key we send and writes back exactly the same map."""
    full = {"RequestId": "REQ-1", **body}
    assert SDK_BODIES[name]().from_map(full).to_map() == full


def walk(handler: Handler, svc: Services, params: dict[str, str], list_key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(1000):
        body = handler(call({**params, **({"NextToken": token} if token else {})}), svc)
        assert isinstance(body[list_key], list)
        items += body[list_key]
        token = body.get("NextToken")
        if token is None:
            return items
        assert isinstance(token, str) and token
    raise AssertionError("paging does not terminate")


# ----------------------------------------------------------------------------------- shapes


def test_every_operation_answers_the_sdk_shape() -> None:
    with services() as svc:
        put(
            svc,
            event(
                1,
                NOW - 3_600_000,
                resourceType="ACS::ECS::Instance",
                resourceName="i-1",
                eventCategory="Data",
            ),
            event(2, NOW - 7_200_000, ip="10.0.0.2", name="StopInstance"),
        )
        for name, (handler, item_key) in PAGED.items():
            body = handler(call({"AccessKey": KEY, "ServiceName": "Ecs"}), svc)
            assert set(body) == {name}, "no NextToken on the last page, no RequestId from the handler"
            assert body[name] and all(set(item) == ITEM_KEYS[name] for item in body[name])
            first = body[name][0]
            expected_item = {"Ips": "10.0.0.1", "Events": "DescribeInstances", "Resources": "i-1"}[name]
            assert first[item_key] == expected_item
            assert first["UsedTimestamp"] == NOW - 3_600_000 and isinstance(first["UsedTimestamp"], int)
            assert first["Source"] == "DataEvent"
            assert json.loads(first["Detail"])["eventId"] == "e-1"
            assert first["Detail"].startswith('{\n  "eventId": "e-1",')
            sdk_roundtrip(name, body)
        assert [
            i["Ip"]
            for i in get_access_key_last_used_ips(call({"AccessKey": KEY, "ServiceName": "Ecs"}), svc)["Ips"]
        ] == ["10.0.0.1", "10.0.0.2"]
        resources = get_access_key_last_used_resources(call({"AccessKey": KEY, "ServiceName": "Ecs"}), svc)
        assert resources["Resources"][0]["ResourceType"] == "ACS::ECS::Instance"

        products = get_access_key_last_used_products(call({"AccessKey": KEY}), svc)
        assert products == {
            "Products": [
                {
                    "ServiceName": "Ecs",
                    "ServiceNameCn": "云服务器 ECS",
                    "ServiceNameEn": "Elastic Compute Service",
                    "UsedTimestamp": NOW - 3_600_000,
                    "Source": "DataEvent",
                    "Detail": products["Products"][0]["Detail"],
                }
            ]
        }
        sdk_roundtrip("Products", products)

        info = get_access_key_last_used_info(call({"AccessKey": KEY}), svc)
        assert set(info) == INFO_KEYS
        assert (info["AccessKeyId"], info["AccountId"], info["OwnerId"]) == (KEY, ACCOUNT, ACCOUNT)
        assert (info["UserName"], info["AccountType"], info["ServiceName"]) == ("alice", "ram-user", "Ecs")
        assert info["UsedTimestamp"] == NOW - 3_600_000 and json.loads(info["Detail"])["eventId"] == "e-1"
        sdk_roundtrip("Info", info)


def test_unused_or_foreign_key_answers_empty_lists_and_a_bare_info() -> None:
    with services() as svc:
        put(svc, event(1, NOW - 1000, account=OTHER))
        for name, (handler, _) in PAGED.items():
            assert handler(call({"AccessKey": KEY, "ServiceName": "Ecs"}), svc) == {name: []}
        assert get_access_key_last_used_products(call({"AccessKey": KEY}), svc) == {"Products": []}
        info = get_access_key_last_used_info(call({"AccessKey": KEY}), svc)
        assert info == {"AccessKeyId": KEY}
        sdk_roundtrip("Info", info)
        # The owner sees it.
        assert (
            get_access_key_last_used_info(call({"AccessKey": KEY}, account=OTHER), svc)["AccountId"] == OTHER
        )


def test_a_stored_event_is_visible_at_once() -> None:
    with services() as svc:
        now = now_ms()
        params = {"AccessKey": KEY, "ServiceName": "Ecs"}
        assert get_access_key_last_used_ips(call(params, now=now), svc) == {"Ips": []}
        put(svc, event(1, now - 1000, ip="192.0.2.55"))
        ips = get_access_key_last_used_ips(call(params, now=now_ms()), svc)["Ips"]
        assert [i["Ip"] for i in ips] == ["192.0.2.55"]


# ----------------------------------------------------------------------------------- errors


def error_of(handler: Handler, svc: Services, params: dict[str, str]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        handler(call(params), svc)
    return caught.value


@pytest.mark.parametrize("name", ["Ips", "Events", "Resources"])
def test_missing_parameters(name: str) -> None:
    handler = PAGED[name][0]
    with services() as svc:
        for params, code, message in [
            ({"ServiceName": "Ecs"}, "MissingAccessKey", "AccessKey is mandatory for this action."),
            (
                {"AccessKey": "", "ServiceName": "Ecs"},
                "MissingAccessKey",
                "AccessKey is mandatory for this action.",
            ),
            ({"AccessKey": KEY}, "MissingServiceName", "ServiceName is mandatory for this action."),
        ]:
            err = error_of(handler, svc, params)
            assert (err.code, err.http_status, err.message) == (code, 400, message)
        for other in (get_access_key_last_used_products, get_access_key_last_used_info):
            assert error_of(other, svc, {}).code == "MissingAccessKey"
            assert other(call({"AccessKey": KEY}), svc)  # no ServiceName needed


@pytest.mark.parametrize("size", ["-1", "101", "abc", "1.5", " 5", "+5", "٣", "1e2", "99999999999"])
def test_bad_page_size(size: str) -> None:
    with services() as svc:
        err = error_of(
            get_access_key_last_used_ips, svc, {"AccessKey": KEY, "ServiceName": "Ecs", "PageSize": size}
        )
        assert (err.code, err.http_status) == ("InvalidQueryParameter", 400)
        assert err.message.startswith("The specified query parameter is invalid")


def test_page_size_zero_and_empty_mean_the_default() -> None:
    with services() as svc:
        put(svc, *(event(i, NOW - i * 1000, ip=f"10.0.{i // 200}.{i % 200}") for i in range(1, 31)))
        for size in ("0", "", None):
            params = {"AccessKey": KEY, "ServiceName": "Ecs"} | (
                {"PageSize": size} if size is not None else {}
            )
            body = get_access_key_last_used_ips(call(params), svc)
            assert len(body["Ips"]) == 20 and "NextToken" in body
        full = get_access_key_last_used_ips(
            call({"AccessKey": KEY, "ServiceName": "Ecs", "PageSize": "100"}), svc
        )
        assert len(full["Ips"]) == 30 and "NextToken" not in full


def test_bad_tokens_are_invalid_query_parameters() -> None:
    with services() as svc:
        put(svc, *(event(i, NOW - i * 1000, ip=f"10.0.0.{i}") for i in range(1, 6)))
        params = {"AccessKey": KEY, "ServiceName": "Ecs", "PageSize": "2"}
        token = get_access_key_last_used_ips(call(params), svc)["NextToken"]
        cases: list[tuple[Handler, dict[str, str], str]] = [
            (get_access_key_last_used_ips, {**params, "NextToken": token[:-3] + "abc"}, ACCOUNT),
            (get_access_key_last_used_ips, {**params, "NextToken": "x" * 2000}, ACCOUNT),
            (get_access_key_last_used_ips, {**params, "ServiceName": "Ram", "NextToken": token}, ACCOUNT),
            (get_access_key_last_used_ips, {**params, "AccessKey": "LTAIx", "NextToken": token}, ACCOUNT),
            (get_access_key_last_used_events, {**params, "NextToken": token}, ACCOUNT),
            (get_access_key_last_used_ips, {**params, "NextToken": token}, OTHER),
        ]
        for handler, bad, account in cases:
            with pytest.raises(ApiError) as caught:
                handler(call(bad, account=account), svc)
            assert caught.value.code == "InvalidQueryParameter"
        # Changing only PageSize continues the walk.
        rest = get_access_key_last_used_ips(call({**params, "PageSize": "50", "NextToken": token}), svc)
        assert [i["Ip"] for i in rest["Ips"]] == ["10.0.0.3", "10.0.0.4", "10.0.0.5"]


def test_overlong_parameters_are_refused() -> None:
    with services() as svc:
        err = error_of(get_access_key_last_used_ips, svc, {"AccessKey": "A" * 129, "ServiceName": "Ecs"})
        assert err.code == "InvalidQueryParameter"
        err = error_of(get_access_key_last_used_ips, svc, {"AccessKey": KEY, "ServiceName": "E" * 129})
        assert err.code == "InvalidQueryParameter"


# ----------------------------------------------------------------------- paging through the wire


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    uses=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 9), st.integers(0, 5), st.sampled_from(["Ecs", "Ram"])),
        min_size=0,
        max_size=60,
    ),
    page_size=st.one_of(st.none(), st.integers(0, 100).map(str)),
)
def test_wire_paging_yields_each_item_once_in_recency_order(
    uses: list[tuple[int, int, int, str]], page_size: str | None
) -> None:
    with services() as svc:
        events = [
            event(
                i,
                NOW - minutes * 60_000,
                ip=f"10.9.0.{ip}",
                name=f"Op{name}",
                service=service,
                resourceType="ACS::X::Thing",
                resourceName=f"r-{ip}-{name}",
            )
            for i, (minutes, ip, name, service) in enumerate(uses)
        ]
        if events:
            put(svc, *events)
        for name, (handler, item_key) in PAGED.items():
            params = {"AccessKey": KEY, "ServiceName": "Ecs"} | ({"PageSize": page_size} if page_size else {})
            items = walk(handler, svc, params, name)
            latest: dict[str, int] = {}
            for e in events:
                if e["serviceName"] != "Ecs":
                    continue
                item = {
                    "Ip": e["sourceIpAddress"],
                    "EventName": e["eventName"],
                    "ResourceName": e["resourceName"],
                }
                t = parse_wire_time(e["eventTime"])
                latest[item[item_key]] = max(latest.get(item[item_key], t), t)
            got = [i[item_key] for i in items]
            assert len(got) == len(set(got)) and set(got) == set(latest)
            assert [i["UsedTimestamp"] for i in items] == sorted((latest[g] for g in got), reverse=True)
            assert all(i["UsedTimestamp"] == latest[i[item_key]] for i in items)
