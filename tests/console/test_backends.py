"""The console's pages on both backends: the same search, histogram, event and export answers."""

from __future__ import annotations

import base64
import os
import re
import time
import urllib.parse
from pathlib import Path

import httpx

from trailhouse.model.event import event_from_mapping
from trailhouse.model.query import Attr, EventFilter
from trailhouse.model.times import DAY_MS, format_wire_time, now_ms
from trailhouse.service.credentials import create_access_key
from trailhouse.service.secrets import Sealer
from trailhouse.settings import Settings
from trailhouse.storage import open_store

from ..conftest import free_port, run_server
from .conftest import ACCOUNT_B, csrf_of

ACCOUNT = "1234567890123456"


def _event(i: int, now: int, account: str = ACCOUNT) -> dict[str, object]:
    return {
        "eventId": f"ev-{account[-2:]}-{i:04d}",
        "eventVersion": 1,
        "eventTime": format_wire_time(now - i * 2 * 3_600_000),
        "eventName": "DeleteInstance" if i % 3 == 0 else "DescribeInstances",
        "eventRW": "Write" if i % 3 == 0 else "Read",
        "serviceName": "Ecs",
        "requestId": f"req-{i}",
        "sourceIpAddress": f"10.0.{i % 4}.{i % 250}",
        "resourceName": f"i-{i % 5}",
        "resourceType": "ACS::ECS::Instance",
        "errorCode": "Forbidden" if i % 7 == 0 else None,
        "userIdentity": {
            "type": "ram-user",
            "accountId": account,
            "userName": f"user{i % 3}",
            "accessKeyId": "LTAIk",
        },
    }


def test_search_histogram_event_and_export_agree_on_both_backends(backend_url: str, tmp_path: Path) -> None:
    master = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(db_url=backend_url, port=free_port(), data_dir=str(tmp_path / "d"), master_key=master)
    store = open_store(backend_url)
    now = now_ms()
    events = [_event(i, now) for i in range(1, 300)] + [_event(i, now, ACCOUNT_B) for i in range(1, 30)]
    store.append([event_from_mapping({k: v for k, v in e.items() if v is not None}) for e in events])
    key = create_access_key(store, Sealer(base64.b64decode(master)), account_id=ACCOUNT)
    mine = [e for e in events if e["userIdentity"]["accountId"] == ACCOUNT]  # type: ignore[index]
    want = [e for e in mine if e["eventRW"] == "Write" and str(e["resourceName"]) in ("i-0", "i-3")]
    window = f"start={format_wire_time(now - 30 * DAY_MS)}&end={format_wire_time(now)}"
    query = f"{window}&EventRW=Write&ResourceName=i-0&ResourceName=i-3&rows=20"
    try:
        with run_server(settings, store) as server, httpx.Client(base_url=server.url) as client:
            form = client.get("/console/sign-in")
            signed = client.post(
                "/console/sign-in",
                data={"csrf": csrf_of(form.text), "key_id": key.key.access_key_id, "secret": key.secret},
            )
            assert signed.status_code == 303
            page = client.get(f"/console/search?{query}")
            assert page.status_code == 200
            assert f'data-total="{len(want)}"' in page.text
            shown = re.findall(r'href="/console/event/([^"]+)"', page.text)
            expected = sorted(want, key=lambda e: str(e["eventTime"]), reverse=True)
            assert [urllib.parse.unquote(s) for s in shown] == [e["eventId"] for e in expected[:20]]
            counts = [int(n) for n in re.findall(r'class="bar" data-count="(\d+)"', page.text)]
            assert sum(counts) == len(want) and len(counts) > 10
            older = re.search(r'href="(/console/search\?[^"]*cursor=[^"]+)"', page.text)
            assert older is not None
            rest = client.get(older.group(1).replace("&amp;", "&"))
            more = [urllib.parse.unquote(s) for s in re.findall(r'href="/console/event/([^"]+)"', rest.text)]
            assert more == [e["eventId"] for e in expected[20:40]]
            event = client.get(f"/console/event/{shown[0]}")
            assert (
                event.status_code == 200
                and f"&#34;eventId&#34;: &#34;{expected[0]['eventId']}&#34;" in event.text
            )
            export = client.get(f"/console/export?{query}&format=ndjson")
            assert len(export.text.splitlines()) == len(want)
            foreign = client.get(f"/console/event/{urllib.parse.quote('ev-22-0001')}")
            assert foreign.status_code == 404
    finally:
        store.close()


def _sql(db_url: str, statement: str, params: tuple[object, ...]) -> None:
    """Change the database behind the server's back, as tests/integrity/test_tamper.py does."""
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement, params)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), params)


def _mark(client: httpx.Client, event_id: str) -> tuple[str, str]:
    html = client.get(f"/console/event/{urllib.parse.quote(event_id, safe='')}").text
    found = re.search(r'<dd class="mark[^"]*" data-mark="([a-z-]+)"[^>]*>(.*?)</dd>', html, re.S)
    assert found, "no integrity mark on the event page"
    return found.group(1), found.group(2)


def _signed_in(client: httpx.Client, key_id: str, secret: str) -> None:
    form = client.get("/console/sign-in")
    form_data = {"csrf": csrf_of(form.text), "key_id": key_id, "secret": secret}
    signed = client.post("/console/sign-in", data=form_data)
    assert signed.status_code == 303


def test_integrity_mark_checked_then_failed_after_tampering_on_both_backends(
    backend_url: str, tmp_path: Path
) -> None:
    from trailhouse.storage import codec

    master = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(db_url=backend_url, port=free_port(), data_dir=str(tmp_path / "d"), master_key=master)
    store = open_store(backend_url)
    now = now_ms()
    events = [_event(i, now) for i in range(1, 40)] + [_event(i, now, ACCOUNT_B) for i in range(1, 5)]
    store.append([event_from_mapping({k: v for k, v in e.items() if v is not None}) for e in events])
    key = create_access_key(store, Sealer(base64.b64decode(master)), account_id=ACCOUNT)
    target, other = "ev-56-0007", "ev-56-0008"
    try:
        with run_server(settings, store) as server, httpx.Client(base_url=server.url) as client:
            _signed_in(client, key.key.access_key_id, key.secret)
            deadline = time.monotonic() + 20
            while (mark := _mark(client, target))[0] != "checked":
                assert mark[0] == "pending", mark  # never failed while the sequencer catches up
                assert time.monotonic() < deadline, "the event was not sequenced"
                time.sleep(0.2)
            assert f"proof checked against checkpoint of size {len(events) - 4}." in mark[1]
            proof = client.get(f"/console/proof/{target}")
            assert proof.status_code == 200 and proof.json()["treeSize"] == len(events) - 4
            # Someone with database access rewrites the stored event.
            stored = store.find_events(
                account_id=ACCOUNT,
                flt=EventFilter(now - 30 * DAY_MS, now + DAY_MS, equals={Attr.EVENT_ID: (target,)}),
                after=None,
                descending=True,
                limit=1,
            )[0]
            forged = stored.body.replace(b'"sourceIpAddress":"10.0.3.7"', b'"sourceIpAddress":"10.9.9.9"')
            assert forged != stored.body
            _sql(backend_url, "UPDATE events SET body = ? WHERE seq = ?", (codec.pack(forged), stored.seq))
            state, text = _mark(client, target)
            assert state == "failed" and "does not match the logged one" in text, text
            assert "10.9.9.9" in client.get(f"/console/event/{target}").text  # the page shows what is stored
            assert _mark(client, other)[0] == "checked"  # the rest of the log still proves
    finally:
        store.close()


def test_an_event_not_yet_sequenced_says_so(tmp_path: Path) -> None:
    master = base64.b64encode(os.urandom(32)).decode()
    db_url = f"sqlite:///{tmp_path / 'off.db'}"
    settings = Settings(
        db_url=db_url, port=free_port(), data_dir=str(tmp_path / "d"), master_key=master, log_sequencer="off"
    )
    store = open_store(db_url)
    now = now_ms()
    store.append([event_from_mapping({k: v for k, v in _event(1, now).items() if v is not None})])
    key = create_access_key(store, Sealer(base64.b64decode(master)), account_id=ACCOUNT)
    try:
        with run_server(settings, store) as server, httpx.Client(base_url=server.url) as client:
            _signed_in(client, key.key.access_key_id, key.secret)
            state, text = _mark(client, "ev-56-0001")
            assert state == "pending" and "Not yet sequenced" in text and "/console/proof/" not in text
            proof = client.get("/console/proof/ev-56-0001")
            assert proof.status_code == 404 and proof.json()["error"]["code"] == "NotFound"
    finally:
        store.close()
