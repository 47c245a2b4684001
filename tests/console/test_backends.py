"""The console's pages on both backends: the same search, histogram, event and export answers."""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
from pathlib import Path

import httpx

from trailhouse.model.event import event_from_mapping
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
