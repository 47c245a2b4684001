"""The console under test: a real server on 127.0.0.1 with two tenants' data, and Debian's Chromium.

Account A holds the demo dataset (the leaked-key story) plus events with hostile values; account B
holds a few events of its own. Each account has an AccessKey; A also has a key limited to
GetAccessKeyLastUsedIps and a read token. Screenshots go to ``test-artifacts/console/`` (git-ignored).

Insights come from the real detector, as on a server: the demo data before the attack is stored
first and is the baseline, then the rest arrives (the attack, a burst of deletions, a hostile
policy change; in B, a trail stopped) and the detector reads it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.insight_traffic import burst

from trailhouse.demo.load import load_demo
from trailhouse.demo.story import DEMO_ACCOUNT, demo_events, demo_story_facts
from trailhouse.model.credentials import TokenScope
from trailhouse.model.event import event_from_mapping
from trailhouse.model.insights import INSIGHT_TYPES, InsightQuery, StoredInsight
from trailhouse.model.times import DAY_MS, format_wire_time, now_ms, parse_wire_time
from trailhouse.service.credentials import create_access_key, create_token
from trailhouse.service.insights.config import thresholds_from
from trailhouse.service.insights.detector import Detector
from trailhouse.service.secrets import Sealer
from trailhouse.settings import Settings
from trailhouse.storage import open_store

from ..conftest import LiveServer, free_port, run_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
ACCOUNT_B = "7777000011112222"

#: Values a key holder chooses, each able to break a page that does not escape.
HOSTILE = {
    "agent": "<script>window.__pwned=1</script>\"onmouseover=alert(1) x='",
    "resource": '"><img src=x onerror="window.__pwned=2">',
    "message": "</pre><script>window.__pwned=3</script>&amp; <b>bold</b>",
    "user": "<svg/onload=window.__pwned=4>",
    "event_name": "Describe<i>Evil</i>",
    "error": 'Err"<u>',
    "key": "LTAI<script>k</script>",
}


@dataclass
class Site:
    server: LiveServer
    account_a: str
    key_a: tuple[str, str]
    key_b: tuple[str, str]
    key_ips_only: tuple[str, str]
    token_a: str
    leaked_key: str
    attacker_ips: tuple[str, ...]
    b_event_ids: list[str]
    hostile_event_id: str
    now_ms: int
    #: The insight records the detector stored for A and for B.
    insights_a: list[StoredInsight]
    insights_b: list[StoredInsight]
    #: The AccessKey of the injected burst of DeleteSnapshot calls (an ApiCallRateInsight).
    burst_key: str
    burst_ids: list[str]

    @property
    def url(self) -> str:
        return self.server.url


def _b_events(now: int) -> list[dict[str, Any]]:
    out = []
    for i in range(12):
        out.append(
            {
                "eventId": f"b-event-{i:03d}",
                "eventVersion": 1,
                "eventTime": format_wire_time(now - (i + 1) * 3_600_000),
                "eventName": "TenantBOnly",
                "eventType": "ApiCall",
                "eventRW": "Write" if i % 2 else "Read",
                "serviceName": "Ecs",
                "acsRegion": "cn-beijing",
                "requestId": f"b-req-{i}",
                "sourceIpAddress": "203.0.113.77",
                "userAgent": "tenant-b-agent",
                "resourceName": f"i-tenantb{i}",
                "resourceType": "ACS::ECS::Instance",
                "userIdentity": {
                    "type": "ram-user",
                    "accountId": ACCOUNT_B,
                    "principalId": "3000",
                    "userName": "bob-of-b",
                    "accessKeyId": "LTAItenantBkey000001",
                },
            }
        )
    return out


def _hostile_event(now: int) -> dict[str, Any]:
    return {
        "eventId": "hostile-<script>-1",
        "eventVersion": 1,
        "eventTime": format_wire_time(now - 30 * 60_000),
        "eventName": HOSTILE["event_name"],
        "eventType": "ApiCall",
        "eventRW": "Write",
        "serviceName": "Ecs",
        "acsRegion": "cn-hangzhou",
        "requestId": "req-<hostile>",
        "sourceIpAddress": "198.51.100.66",
        "userAgent": HOSTILE["agent"],
        "resourceName": HOSTILE["resource"],
        "resourceType": "ACS::ECS::Instance",
        "errorCode": HOSTILE["error"],
        "errorMessage": HOSTILE["message"],
        "userIdentity": {
            "type": "ram-user",
            "accountId": DEMO_ACCOUNT,
            "principalId": "2000",
            "userName": HOSTILE["user"],
            "accessKeyId": HOSTILE["key"],
        },
    }


#: B's trail, stopped by B's key: B's insight, which A must never see.
B_TRAIL = "b-secret-trail-7777"
#: The hostile policy change's event (its insight's fields are the hostile values).
HOSTILE_POLICY_EVENT = "hostile-<script>-policy"


def _b_trail_stop(now: int) -> dict[str, Any]:
    stop = _b_events(now)[0] | {
        "eventId": "b-event-stop-logging",
        "eventTime": format_wire_time(now - 20 * 60_000),
        "eventName": "StopLogging",
        "serviceName": "Actiontrail",
        "eventRW": "Write",
        "requestParameters": {"Name": B_TRAIL},
    }
    return stop


def _hostile_policy_change(now: int) -> dict[str, Any]:
    change = _hostile_event(now) | {
        "eventId": HOSTILE_POLICY_EVENT,
        "eventTime": format_wire_time(now - 25 * 60_000),
        "eventName": "AttachPolicyToUser",
        "serviceName": "Ram",
        "sourceIpAddress": "198.51.100.67",
        "requestParameters": {
            "PolicyType": "Custom",
            "PolicyName": HOSTILE["resource"],
            "UserName": HOSTILE["user"],
        },
    }
    for name in ("errorCode", "errorMessage", "resourceName", "resourceType"):
        change.pop(name)
    return change


def _policy_change(now: int, n: int) -> dict[str, Any]:
    """A first policy change by user ``admin-n`` (no AccessKey): one PolicyChangeInsight each."""
    change = _hostile_policy_change(now) | {
        "eventId": f"policy-change-{n:03d}",
        "eventTime": format_wire_time(now - 3 * DAY_MS + n * 60_000),
        "sourceIpAddress": "192.0.2.10",
        "userAgent": "console.aliyun.com",
        "requestParameters": {"PolicyType": "Custom", "PolicyName": f"policy-{n}", "UserName": f"dev-{n}"},
    }
    identity = {k: v for k, v in change["userIdentity"].items() if k != "accessKeyId"}
    change["userIdentity"] = identity | {"userName": f"admin-{n}"}
    return change


def _detect(detector: Detector) -> None:
    """Run the detector until it has read the whole log (what `trailhouse insights detect` does)."""
    while detector.step().processed:
        pass


@contextlib.contextmanager
def make_site(tmp: Path, *, policy_changes: int = 0, **overrides: Any) -> Iterator[Site]:
    """The site; ``policy_changes`` more first policy changes in A (as many more insights)."""
    master = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        db_url=f"sqlite:///{tmp / 'console.db'}",
        port=free_port(),
        data_dir=str(tmp / "data"),
        master_key=master,
        **overrides,
    )
    store = open_store(settings.db_url)
    sealer = Sealer(base64.b64decode(master))
    now = now_ms()
    # The baseline: the demo data before the attack, stored before Insights are enabled.
    attack = demo_story_facts(end_ms=now).first_malicious_ms
    before = [e for e in demo_events(end_ms=now, count=1500) if parse_wire_time(e["eventTime"]) < attack]
    store.append([event_from_mapping(e) for e in before])
    store.append([event_from_mapping(e) for e in _b_events(now)])
    for kind in INSIGHT_TYPES:
        store.set_insight_type(account_id=DEMO_ACCOUNT, insight_type=kind, enabled=True, now_ms=now)
    store.set_insight_type(
        account_id=ACCOUNT_B, insight_type="TrailConcealmentInsight", enabled=True, now_ms=now
    )
    detector = Detector(store, thresholds_from(settings), owner="console-fixture")
    _detect(detector)
    # What arrives then: the rest of the demo (the attack), a burst of deletions by a CI key over two
    # minutes, a policy change full of hostile values; in B, a trail stopped.
    demo = load_demo(store, sealer, count=1500, now=now)
    template = next(
        e
        for e in reversed(before)
        if e["recipientAccountId"] == DEMO_ACCOUNT
        and e["userIdentity"].get("type") == "ram-user"
        and e["userIdentity"].get("accessKeyId", "").startswith("LTAI")
        and e["userIdentity"]["accessKeyId"] != demo.leaked_key
    )
    minute = now - 2 * 3_600_000 - now % 60_000
    deletions = [
        *burst(template, minute, 60, name="DeleteSnapshot", service="Ecs", rw="Write"),
        *burst(template, minute + 60_000, 45, name="DeleteSnapshot", service="Ecs", rw="Write"),
    ]
    store.append([event_from_mapping(e) for e in deletions])
    store.append([event_from_mapping(_hostile_event(now)), event_from_mapping(_hostile_policy_change(now))])
    store.append([event_from_mapping(_b_trail_stop(now))])
    store.append([event_from_mapping(_policy_change(now, n)) for n in range(policy_changes)])
    _detect(detector)
    everything = InsightQuery(0, now + DAY_MS)
    insights_a = [
        i for _, i in store.find_insights(account_id=DEMO_ACCOUNT, query=everything, after=None, limit=500)
    ]
    insights_b = [
        i for _, i in store.find_insights(account_id=ACCOUNT_B, query=everything, after=None, limit=500)
    ]
    key_b = create_access_key(store, sealer, account_id=ACCOUNT_B, user_name="b-analyst")
    ips_only = create_access_key(
        store,
        sealer,
        account_id=DEMO_ACCOUNT,
        user_name="ips-only",
        allowed_actions=("actiontrail:GetAccessKeyLastUsedIps",),
    )
    token = create_token(store, account_ids=(DEMO_ACCOUNT,), all_accounts=False, scopes=(TokenScope.READ,))
    try:
        with run_server(settings, store) as server:
            yield Site(
                server=server,
                account_a=DEMO_ACCOUNT,
                key_a=(demo.access_key_id, demo.access_key_secret),
                key_b=(key_b.key.access_key_id, key_b.secret),
                key_ips_only=(ips_only.key.access_key_id, ips_only.secret),
                token_a=token.secret,
                leaked_key=demo.leaked_key,
                attacker_ips=demo.attacker_ips,
                b_event_ids=[e["eventId"] for e in _b_events(now)] + [_b_trail_stop(now)["eventId"]],
                hostile_event_id="hostile-<script>-1",
                now_ms=now,
                insights_a=insights_a,
                insights_b=insights_b,
                burst_key=template["userIdentity"]["accessKeyId"],
                burst_ids=[e["eventId"] for e in deletions],
            )
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with make_site(tmp_path_factory.mktemp("console")) as s:
        yield s


# -- HTTP helpers (no browser) ----------------------------------------------------------------------


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def http_sign_in(client: httpx.Client, key_id: str, secret: str) -> httpx.Response:
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in", data={"csrf": csrf_of(form.text), "key_id": key_id, "secret": secret}
    )


@contextlib.contextmanager
def signed_in_client(site: Site, key: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as client:
        r = http_sign_in(client, *key)
        assert r.status_code == 303, r.text[:500]
        yield client


def window_query(site: Site, days: int = 30) -> str:
    return (
        f"start={format_wire_time(site.now_ms - days * DAY_MS)}&end={format_wire_time(site.now_ms + 60_000)}"
    )


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium): browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        base_url=site.url,
        permissions=["clipboard-read", "clipboard-write"],
        accept_downloads=True,
    )
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    try:
        yield pg
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def browser_sign_in(page: Any, key: tuple[str, str]) -> None:
    page.goto("/console/sign-in")
    page.fill("input[name=key_id]", key[0])
    page.fill("input[name=secret]", key[1])
    page.click("#sign-in-key button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/search.*"))
