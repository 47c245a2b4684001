"""The ingest contract (docs/api.md, "Ingest contract"), over real HTTP on 127.0.0.1, on every backend.

An event is refused only when it cannot be an audit record; every other oddity is stored as sent,
reported as a warning, and stays readable on every read path: the native search and its CSV and
NDJSON exports, and LookupEvents through the official SDK in JSON and XML. Each test here is a
regression test of a defect found from outside (issue 17).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import new_access_key
from trailhouse.model.credentials import TokenScope
from trailhouse.model.query import EventFilter
from trailhouse.model.times import DAY_MS, format_wire_time, now_ms
from trailhouse.service.credentials import create_token

ACCOUNT = "1111222233334444"


def event(i: int, **extra: object) -> dict[str, Any]:
    e: dict[str, Any] = {
        "eventId": f"contract-{i}",
        "eventTime": format_wire_time(now_ms() - (i + 1) * 60_000),
        "eventName": "DescribeInstances",
        "eventType": "ApiCall",
        "serviceName": "Ecs",
        "sourceIpAddress": "10.0.0.1",
        "userIdentity": {"accountId": ACCOUNT, "type": "ram-user", "userName": "alice", "accessKeyId": "AK1"},
    }
    e.update(extra)
    return e


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], backend_url: str) -> LiveServer:
    return server_factory(db_url=backend_url, max_event_bytes=8 * 1024, retention_days=30)


def secret(server: LiveServer, scope: TokenScope = TokenScope.INGEST) -> str:
    return create_token(server.store, account_ids=(ACCOUNT,), all_accounts=False, scopes=(scope,)).secret


def post(server: LiveServer, content: bytes, **headers: str) -> httpx.Response:
    headers["authorization"] = f"Bearer {secret(server)}"
    return httpx.post(f"{server.url}/api/v1/events", content=content, headers=headers, timeout=30)


def stored(server: LiveServer) -> dict[str, bytes]:
    found = server.store.find_events(
        account_id=ACCOUNT, flt=EventFilter(0, 2**62), after=None, descending=False, limit=10_000
    )
    return {e.event_id: e.body for e in found}


def native_get(server: LiveServer, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret(server, TokenScope.READ)}"}
    return httpx.get(f"{server.url}/api/v1/events", params=params, headers=headers, timeout=30)


def test_nulls_in_optional_fields_are_absence(server: LiveServer) -> None:
    e = event(
        1,
        vpcId=None,
        userAgent=None,
        errorCode=None,
        requestParameters=None,
        referencedResources=None,
        sensitiveAction=None,
    )
    e["userIdentity"]["userName"] = None
    r = post(server, orjson.dumps([e]))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["warnings"] == [] and r.json()["rejected"] == 0
    assert orjson.loads(stored(server)["contract-1"]) == e  # the nulls kept as sent
    found = native_get(server, ServiceName="Ecs").json()
    assert [x["eventId"] for x in found["events"]] == ["contract-1"]


def test_odd_types_are_stored_with_warnings_and_found_by_what_is_indexed(server: LiveServer) -> None:
    odd = event(2, vpcId=42, errorCode={"code": "X"}, isGlobal="no", requestParameters="a=b")
    r = post(server, orjson.dumps([event(1), odd]))
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 0), body
    assert {w["index"] for w in body["warnings"]} == {1}
    assert {w["eventId"] for w in body["warnings"]} == {"contract-2"}
    assert len(body["warnings"]) == 4
    assert orjson.loads(stored(server)["contract-2"]) == odd
    # eventName, service and account are indexed as usual; the odd errorCode is not indexed.
    found = native_get(server, ServiceName="Ecs").json()
    assert sorted(x["eventId"] for x in found["events"]) == ["contract-1", "contract-2"]
    assert native_get(server, failed="true").json()["events"] == []


def test_a_bom_before_the_body_is_not_an_error(server: LiveServer) -> None:
    bom = b"\xef\xbb\xbf"
    assert post(server, bom + orjson.dumps([event(1)])).json()["accepted"] == 1
    assert post(server, bom + orjson.dumps(event(2))).json()["accepted"] == 1
    ndjson = bom + orjson.dumps(event(3)) + b"\n" + orjson.dumps(event(4)) + b"\n"
    assert post(server, ndjson).json()["accepted"] == 2
    assert post(server, gzip.compress(bom + orjson.dumps({"events": [event(5)]}))).json()["accepted"] == 1
    assert sorted(stored(server)) == [f"contract-{i}" for i in range(1, 6)]


@pytest.mark.parametrize("shape", ["array", "wrapper", "ndjson"])
def test_a_lone_surrogate_costs_only_its_own_event_a_warning(server: LiveServer, shape: str) -> None:
    texts = [orjson.dumps(event(i)) for i in range(3)]
    texts[1] = texts[1].replace(b'"alice"', b'"al\\ud800ice"')
    if shape == "array":
        content = b"[" + b",".join(texts) + b"]"
    elif shape == "wrapper":
        content = b'{"events": [' + b",\n ".join(texts) + b"]}"
    else:
        content = b"\n".join(texts)
    body = post(server, content).json()
    assert (body["accepted"], body["rejected"]) == (3, 0), body
    assert [(w["index"], w["eventId"]) for w in body["warnings"]] == [(1, "contract-1")]
    assert "lone surrogate" in body["warnings"][0]["warning"]
    assert orjson.loads(stored(server)["contract-1"])["userIdentity"]["userName"] == "al\ufffdice"


def test_numbers_no_double_holds_stay_readable_everywhere(server: LiveServer) -> None:
    huge = event(1, requestParameters={"size": 1}, big=1)
    text = (
        orjson.dumps(huge)
        .replace(b'"big":1', b'"big":1e400')
        .replace(b'"size":1', b'"size":123456789012345678901234567890')
    )
    body = post(server, b"[" + text + b"," + orjson.dumps(event(2)) + b"]").json()
    assert body["accepted"] == 2
    assert [w["eventId"] for w in body["warnings"]] == ["contract-1"]
    assert "1e400" in body["warnings"][0]["warning"]
    assert stored(server)["contract-1"] == text  # verbatim

    # The native search, and both exports, read everyone's events, this one included.
    search = native_get(server)
    assert search.status_code == 200
    assert b'"big":1e400' in search.content and b"123456789012345678901234567890" in search.content
    assert {e["eventId"] for e in json.loads(search.content)["events"]} == {"contract-1", "contract-2"}
    ndjson = native_get(server, format="ndjson")
    assert ndjson.status_code == 200 and text in ndjson.content.splitlines()
    exported = native_get(server, format="csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert len(rows) == 3 and not exported.text.rstrip().endswith("QueryTimeout")

    # LookupEvents through the official SDK, JSON and XML.
    from aliyunsdkactiontrail.request.v20200706.LookupEventsRequest import LookupEventsRequest
    from aliyunsdkcore.auth.credentials import AccessKeyCredential
    from aliyunsdkcore.client import AcsClient

    key = new_access_key(server, ACCOUNT)
    client = AcsClient(
        region_id="cn-hangzhou",
        port=server.port,
        credential=AccessKeyCredential(key.key.access_key_id, key.secret),
    )
    for fmt in ("JSON", "XML"):
        request = LookupEventsRequest()
        request.set_endpoint(server.host)
        request.set_protocol_type("http")
        request.set_accept_format(fmt)
        status, _, raw = client.get_response(request)
        assert status == 200, raw
        if fmt == "JSON":
            events = {e["eventId"]: e for e in json.loads(raw)["Events"]}
            assert events["contract-1"]["big"] == float("inf")  # what any JSON parser makes of 1e400
            assert events["contract-1"]["requestParameters"]["size"] == 123456789012345678901234567890
        else:
            root = ET.fromstring(raw)
            big = [el.text for el in root.iter("big")]
            assert big == ["1e400"], raw[:500]
            assert [el.text for el in root.iter("size")] == ["123456789012345678901234567890"]


def test_deep_nesting_is_refused_per_event_naming_the_limit(server: LiveServer) -> None:
    deep = orjson.dumps(event(2)).replace(
        b'"eventType"', b'"requestParameters":' + b"[" * 10_000 + b"]" * 10_000 + b',"eventType"'
    )
    ok = orjson.dumps(event(1))
    for content in (
        b"[" + ok + b"," + deep + b"]",
        b'{"events":[' + ok + b"," + deep + b"]}",
        ok + b"\n" + deep,
    ):
        r = post(server, content)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rejected"] == 1 and body["rejections"][0]["index"] == 1
        assert body["rejections"][0]["eventId"] == "contract-2"
        assert "nested deeper than the limit of 100 levels" in body["rejections"][0]["reason"]
    assert sorted(stored(server)) == ["contract-1"]
    # Whole bodies nested too deep: an answer naming the limit, never a 500.
    for content in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"[" * 100_000,
    ):
        r = post(server, content)
        assert r.status_code < 500, r.text
        if r.status_code == 200:
            assert "nested deeper than the limit" in r.json()["rejections"][0]["reason"]
        else:
            assert r.status_code == 400 and r.json()["error"]["code"] == "MalformedBody"


def test_an_event_over_the_size_limit_is_refused_naming_it(server: LiveServer) -> None:
    big = event(2, padding="x" * 9000)
    body = post(server, orjson.dumps([event(1), big])).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    reason = body["rejections"][0]["reason"]
    assert "over the limit of 8,192 bytes per event" in reason and "TRAILHOUSE_MAX_EVENT_BYTES" in reason
    assert body["rejections"][0]["eventId"] == "contract-2"


def test_an_event_older_than_retention_is_refused_not_dropped_later(server: LiveServer) -> None:
    old = event(2, eventTime=format_wire_time(now_ms() - 31 * DAY_MS))
    ancient = event(3, eventTime="0001-01-01T00:00:00Z")
    body = post(server, orjson.dumps([event(1), old, ancient])).json()
    assert (body["accepted"], body["rejected"]) == (1, 2), body
    for rejection in body["rejections"]:
        assert "older than the retention window of 30 days" in rejection["reason"]
    assert sorted(stored(server)) == ["contract-1"]


def test_an_event_from_the_future_is_stored_with_a_warning(server: LiveServer) -> None:
    soon = event(1, eventTime=format_wire_time(now_ms() + 5 * 60_000))  # within clock skew
    later = event(2, eventTime=format_wire_time(now_ms() + 3 * 3600_000))
    body = post(server, orjson.dumps([soon, later])).json()
    assert body["accepted"] == 2
    assert [w["eventId"] for w in body["warnings"]] == ["contract-2"]
    assert body["warnings"][0]["warning"] == "eventTime is 3.0 h ahead of this server's clock: stored as sent"


def test_what_cannot_be_an_event_is_refused_with_the_reason(server: LiveServer) -> None:
    no_id = event(1)
    no_id.pop("eventId")
    no_time = event(2)
    no_time.pop("eventTime")
    bad_time = event(3, eventTime="yesterday")
    no_account = event(4, userIdentity={"userName": "alice"})
    body = post(server, orjson.dumps([no_id, no_time, bad_time, no_account, "text", event(5)])).json()
    assert (body["accepted"], body["rejected"]) == (1, 5)
    reasons = [r["reason"] for r in body["rejections"]]
    assert "eventId" in reasons[0] and "eventTime" in reasons[1] and "eventTime" in reasons[2]
    assert "userIdentity.accountId" in reasons[3] and "JSON object" in reasons[4]


def test_metrics_count_events_stored_with_warnings(server: LiveServer) -> None:
    post(server, orjson.dumps([event(1, vpcId=1), event(2, vpcId=2, userAgent=3), event(3)]))
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'trailhouse_ingest_events_total{outcome="warnings"} 2.0' in text
    assert 'trailhouse_ingest_events_total{outcome="accepted"} 3.0' in text


def test_cli_ingest_stores_odd_files_and_reports_warnings(tmp_path: Path, backend_url: str) -> None:
    lines = [
        orjson.dumps(event(1, vpcId=None, userAgent=None)),
        orjson.dumps(event(2, vpcId=7)),
        orjson.dumps(event(3)).replace(b'"alice"', b'"\\udc00"'),
        orjson.dumps(event(4, eventTime="1999-01-01T00:00:00Z")),
    ]
    path = tmp_path / "trail.json"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    env = {"TRAILHOUSE_DB": backend_url, "TRAILHOUSE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "trailhouse", "ingest", str(path), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"], summary["eventsWithWarnings"]) == (3, 1, 2), run
    assert run.returncode == 3  # an event was rejected (older than retention)
    assert "older than the retention window" in run.stderr + run.stdout
    assert "warning: field vpcId should be string" in run.stderr + run.stdout


def test_a_misspelt_atomic_flag_is_refused_not_read_as_false(server: LiveServer) -> None:
    headers = {"authorization": f"Bearer {secret(server)}"}
    r = httpx.post(
        f"{server.url}/api/v1/events?atomic=ture",
        content=orjson.dumps([event(1)]),
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidParameter", r.text
    assert "atomic must be true or false" in r.json()["error"]["message"]
    assert stored(server) == {}
