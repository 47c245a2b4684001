"""GET /api/v1/events, /api/v1/summary and /api/v1/openapi.json over real HTTP, on every backend."""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import LiveServer
from trailhouse.model.credentials import TokenScope
from trailhouse.model.event import event_from_mapping
from trailhouse.service.credentials import create_token

A, B = "1000000000000001", "2000000000000002"
NAMES = ("DescribeInstances", "DescribeRegions", "CreateUser", "ListBuckets")


def make_event(i: int, account: str = A) -> dict[str, Any]:
    e: dict[str, Any] = {
        "eventId": f"n-{account}-{i}",
        "eventTime": f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:00:{i % 60:02d}Z",
        "eventName": NAMES[i % 4],
        "serviceName": "Ram" if i % 4 == 2 else "Ecs",
        "sourceIpAddress": f"10.{i % 3}.{i % 5}.{i % 7}",
        "userIdentity": {"accountId": account, "type": "ram-user", "userName": f"u{i % 3}"},
    }
    if i % 6 == 0:
        e["errorCode"] = "NoPermission"
    return e


EVENTS = [make_event(i) for i in range(120)]
WINDOW = {"start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], backend_url: str) -> LiveServer:
    srv = server_factory(db_url=backend_url)
    srv.store.append([event_from_mapping(e) for e in EVENTS + [make_event(i, B) for i in range(10)]])
    return srv


def reader(server: LiveServer, *accounts: str) -> dict[str, str]:
    token = create_token(server.store, account_ids=accounts, all_accounts=False, scopes=(TokenScope.READ,))
    return {"authorization": f"Bearer {token.secret}"}


def get(
    server: LiveServer, headers: dict[str, str], path: str = "/api/v1/events", **params: Any
) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params={**WINDOW, **params}, headers=headers, timeout=30)


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventId"] for e in events]


def newest_first(events: list[dict[str, Any]]) -> list[str]:
    return ids(sorted(events, key=lambda e: e["eventTime"], reverse=True))


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"EventName": "CreateUser"}, lambda e: e["eventName"] == "CreateUser"),
        ({"EventName.prefix": "Describe"}, lambda e: e["eventName"].startswith("Describe")),
        (
            {"EventName": ["CreateUser", "ListBuckets"]},
            lambda e: e["eventName"] in ("CreateUser", "ListBuckets"),
        ),
        (
            {"SourceIpAddress": "10.1.0.0/16"},
            lambda e: ipaddress.ip_address(e["sourceIpAddress"]) in ipaddress.ip_network("10.1.0.0/16"),
        ),
        ({"failed": "true"}, lambda e: "errorCode" in e),
        (
            {"failed": "false", "User": "u1", "ServiceName": "Ecs"},
            lambda e: (
                "errorCode" not in e and e["userIdentity"]["userName"] == "u1" and e["serviceName"] == "Ecs"
            ),
        ),
    ],
)
def test_filters_match_a_brute_force_reference(
    server: LiveServer, params: dict[str, Any], keep: Callable[[dict[str, Any]], bool]
) -> None:
    r = get(server, reader(server, A), limit="1000", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert ids(body["events"]) == newest_first([e for e in EVENTS if keep(e)])
    assert body["nextCursor"] is None and body["account"] == A


def test_cursor_pages_are_complete_and_bound_to_the_query(server: LiveServer) -> None:
    headers = reader(server, A)
    seen: list[str] = []
    cursor = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        body = get(server, headers, limit="7", order="asc", **extra).json()
        seen += ids(body["events"])
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert seen == ids(sorted(EVENTS, key=lambda e: e["eventTime"]))
    first = get(server, headers, limit="7").json()
    changed = get(server, headers, limit="7", EventName="CreateUser", cursor=first["nextCursor"])
    assert changed.status_code == 400 and changed.json()["error"]["code"] == "InvalidParameter"


def test_stored_summary_tells_empty_from_missing(server: LiveServer) -> None:
    headers = reader(server, A)
    body = get(server, headers, EventName="NoSuchEvent").json()
    assert body["events"] == [] and body["stored"]["count"] == 120
    assert body["stored"]["earliest"] == min(e["eventTime"] for e in EVENTS)
    assert body["stored"]["latest"] == max(e["eventTime"] for e in EVENTS)
    nothing = get(server, headers, start="2020-01-01T00:00:00Z", end="2020-02-01T00:00:00Z").json()
    assert nothing["stored"] == {"count": 0, "earliest": None, "latest": None}
    summary = get(server, headers, path="/api/v1/summary").json()
    assert summary["stored"]["count"] == 120


def test_exports_stream_every_event(server: LiveServer) -> None:
    headers = reader(server, A)
    r = get(server, headers, format="ndjson", order="asc")
    assert r.headers["x-trailhouse-stored-count"] == "120"
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    assert lines == sorted(EVENTS, key=lambda e: e["eventTime"])  # verbatim, every one
    r = get(server, headers, format="csv", EventName="CreateUser")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["eventId"] for row in rows] == newest_first(
        [e for e in EVENTS if e["eventName"] == "CreateUser"]
    )
    assert rows[0]["userIdentity.userName"] in ("u0", "u1", "u2")


def test_account_scoping(server: LiveServer) -> None:
    only_a = reader(server, A)
    assert get(server, only_a, account=B).status_code == 403
    both = reader(server, A, B)
    assert get(server, both).json()["error"]["code"] == "MissingAccount"
    assert {e["userIdentity"]["accountId"] for e in get(server, both, account=B).json()["events"]} == {B}
    assert get(server, {}).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"order": "sideways"},
        {"format": "xml"},
        {"start": "yesterday"},
        {"SourceIpAddress": "10.0.0.0/99"},
        {"EventId.prefix": "n-"},
        {"EventName.fuzzy": "x"},
        {"start": "2026-12-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        {"cursor": "garbage"},
    ],
)
def test_bad_parameters_are_400(server: LiveServer, params: dict[str, str]) -> None:
    r = get(server, reader(server, A), **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


def test_openapi_describes_the_native_api(server: LiveServer) -> None:
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/events", "/api/v1/summary", "/api/v1/access-keys/{access_key_id}/report"} <= set(
        doc["paths"]
    )
    names = {p["name"] for p in doc["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert {"EventName", "EventName.prefix", "SourceIpAddress", "cursor", "format"} <= names
