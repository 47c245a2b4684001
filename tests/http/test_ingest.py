"""POST /api/v1/events over real HTTP on 127.0.0.1, on every backend."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.conftest import LiveServer
from trailhouse.model.credentials import TokenScope
from trailhouse.model.query import EventFilter
from trailhouse.service.credentials import create_token


def event(i: int, account: str = "1111", **extra: object) -> dict[str, object]:
    e: dict[str, object] = {
        "eventId": f"ev-{account}-{i}",
        "eventTime": f"2026-11-0{1 + i % 9}T10:00:{i % 60:02d}Z",
        "eventName": "DescribeInstances",
        "serviceName": "Ecs",
        "sourceIpAddress": f"10.0.0.{i % 250}",
        "userIdentity": {
            "accountId": account,
            "type": "ram-user",
            "userName": "alice",
            "accessKeyId": "LTAI5tIngestTestKey00000",
        },
        "extraField": {"nested": [i, True, None, 1.5]},
    }
    e.update(extra)
    return e


@pytest.fixture
def server(server_factory: Callable[..., LiveServer], backend_url: str) -> LiveServer:
    return server_factory(db_url=backend_url, max_batch_events=50, max_body_bytes=64 * 1024)


def token(server: LiveServer, *accounts: str, scopes: tuple[TokenScope, ...] = (TokenScope.INGEST,)) -> str:
    return create_token(server.store, account_ids=accounts, all_accounts=not accounts, scopes=scopes).secret


def post(server: LiveServer, secret: str | None, content: bytes, **headers: str) -> httpx.Response:
    if secret:
        headers["authorization"] = f"Bearer {secret}"
    return httpx.post(f"{server.url}/api/v1/events", content=content, headers=headers, timeout=30)


def stored_ids(server: LiveServer, account: str) -> list[str]:
    found = server.store.find_events(
        account_id=account, flt=EventFilter(0, 2**62), after=None, descending=False, limit=10_000
    )
    return [e.event_id for e in found]


def test_formats_and_idempotence(server: LiveServer) -> None:
    secret = token(server, "1111")
    batch = [event(i) for i in range(10)]
    r = post(server, secret, orjson.dumps(batch))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 10, "duplicates": 0, "rejected": 0, "rejections": [], "warnings": []}
    again = post(server, secret, orjson.dumps({"events": batch}))
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 10
    ndjson = b"\n".join(orjson.dumps(event(i)) for i in range(5, 15)) + b"\n"
    r = post(server, secret, ndjson, **{"content-type": "application/x-ndjson"})
    assert (r.json()["accepted"], r.json()["duplicates"]) == (5, 5)
    gz = gzip.compress(orjson.dumps([event(i) for i in range(15, 20)]))
    r = post(server, secret, gz, **{"content-encoding": "gzip"})
    assert r.json()["accepted"] == 5
    assert sorted(stored_ids(server, "1111")) == sorted(f"ev-1111-{i}" for i in range(20))
    # The stored JSON is what was sent, field for field.
    body = server.store.find_events(
        account_id="1111", flt=EventFilter(0, 2**62), after=None, descending=False, limit=100
    )
    by_id = {e.event_id: orjson.loads(e.body) for e in body}
    assert by_id["ev-1111-3"] == event(3)


def test_partial_batch_reports_each_rejection_and_warning(server: LiveServer) -> None:
    secret = token(server, "1111")
    odd_type = event(2, isGlobal="no")
    no_name = event(3)
    no_name.pop("eventName")
    no_time = event(5)
    no_time.pop("eventTime")
    no_account = event(6, userIdentity={"type": "ram-user"})
    batch = [event(1), odd_type, no_name, event(4), event(1), no_time, no_account]
    r = post(server, secret, orjson.dumps(batch))
    body = r.json()
    assert r.status_code == 200
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (4, 1, 2)
    assert [(x["index"], x["eventId"]) for x in body["rejections"]] == [(5, "ev-1111-5"), (6, "ev-1111-6")]
    assert "eventTime" in body["rejections"][0]["reason"]
    assert "userIdentity.accountId" in body["rejections"][1]["reason"]
    assert [(w["index"], w["eventId"]) for w in body["warnings"]] == [(1, "ev-1111-2"), (2, "ev-1111-3")]
    assert "isGlobal" in body["warnings"][0]["warning"] and "eventName" in body["warnings"][1]["warning"]
    assert sorted(stored_ids(server, "1111")) == [f"ev-1111-{i}" for i in (1, 2, 3, 4)]


def test_ndjson_malformed_line_is_named(server: LiveServer) -> None:
    secret = token(server, "1111")
    content = orjson.dumps(event(1)) + b"\n{not json\n" + orjson.dumps(event(2)) + b"\n"
    body = post(server, secret, content).json()
    assert body["accepted"] == 2
    assert body["rejections"][0]["reason"].startswith("line 2: malformed JSON")


def test_atomic_batch_stores_nothing(server: LiveServer) -> None:
    secret = token(server, "1111")
    r = httpx.post(
        f"{server.url}/api/v1/events?atomic=true",
        content=orjson.dumps([event(1), {"eventId": 1}]),
        headers={"authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 422 and r.json()["accepted"] == 0
    assert stored_ids(server, "1111") == []


def test_token_scoping(server: LiveServer) -> None:
    secret = token(server, "1111")
    r = post(server, secret, orjson.dumps([event(1, "1111"), event(2, "2222")]))
    assert r.json()["accepted"] == 1
    assert "not allowed" in r.json()["rejections"][0]["reason"]
    assert stored_ids(server, "2222") == []
    every = token(server)
    assert post(server, every, orjson.dumps([event(2, "2222")])).json()["accepted"] == 1
    reader = token(server, "1111", scopes=(TokenScope.READ,))
    assert post(server, reader, b"[]").status_code == 403
    assert post(server, None, b"[]").status_code == 401
    assert post(server, "th_wrong", b"[]").status_code == 401


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b'[{"eventId": ', {}, 400, "MalformedBody"),
        (b"\x1f\x8b\x08\x00garbage", {}, 400, "MalformedBody"),
        (b"42", {}, 400, "MalformedBody"),
        (b"x" * (65 * 1024), {}, 413, "PayloadTooLarge"),
        (gzip.compress(b" " * (200 * 1024)), {"content-encoding": "gzip"}, 413, "PayloadTooLarge"),
        (orjson.dumps([event(i) for i in range(51)]), {}, 413, "BatchTooLarge"),
    ],
)
def test_bad_bodies_get_clear_errors(
    server: LiveServer, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    r = post(server, token(server, "1111"), content, **headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}  # still serving


def test_secrets_never_logged(server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = token(server, "1111")
    post(server, secret, orjson.dumps([event(1)]))
    post(server, "th_not_a_token", b"[]")
    assert secret not in caplog.text and "th_not_a_token" not in caplog.text
