"""The trails page and the integrity mark, over HTTP and in Chromium, against a live server.

Trails are made through the service (``service.trails.create_trail``/``set_logging``) on the
server's own store, with a real directory bucket the delivery engine writes to; the mark is
checked against the log the server's sequencer keeps, and independently here with the log's
public key and the RFC 6962 verifier.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from trailhouse.delivery.object_storage import DirectoryStorage
from trailhouse.model.event import event_from_mapping
from trailhouse.model.times import format_wire_time, now_ms
from trailhouse.service.credentials import create_access_key
from trailhouse.service.integrity.checkpoint import open_checkpoint
from trailhouse.service.integrity.keys import load_log_signer
from trailhouse.service.integrity.merkle import leaf_hash, verify_inclusion
from trailhouse.service.organizations import add_member
from trailhouse.service.secrets import Sealer, load_master_key
from trailhouse.service.trails import TrailParams, create_trail, set_logging

from .conftest import ACCOUNT_B, CHROMIUM, Site, make_site, shot, signed_in_client

BUCKET = "audit-bucket-a"
PREFIX = "trailhouse-a"
ACCOUNT_C = "5555000011112222"
SLS = "acs:log:cn-hangzhou:{account}:project/audit-stream"


def _event(i: int, account: str, now: int) -> dict[str, Any]:
    return {
        "eventId": f"late-{account}-{i}",
        "eventVersion": 1,
        "eventTime": format_wire_time(now - i * 1000),
        "eventName": "DeleteBucket",
        "eventType": "ApiCall",
        "eventRW": "Write",
        "serviceName": "Oss",
        "acsRegion": "cn-hangzhou",
        "requestId": f"late-req-{i}",
        "sourceIpAddress": "192.0.2.10",
        "userIdentity": {"type": "ram-user", "accountId": account, "userName": "late"},
    }


def _wait(what: str, check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def tsite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # Files cut every second, so a delivery shows up on the trails page within the test.
    with make_site(tmp_path_factory.mktemp("console-trails"), delivery_window_s=1.0) as s:
        settings, store = s.server.settings, s.server.store
        buckets = DirectoryStorage(settings.resolved_oss_dir())
        (settings.resolved_oss_dir() / BUCKET).mkdir(parents=True, exist_ok=True)
        now = now_ms()
        create_trail(
            store,
            buckets,
            TrailParams(name="audit-oss", oss_bucket_name=BUCKET, oss_key_prefix=PREFIX, event_rw="Write"),
            account_id=s.account_a,
            home_region=settings.region,
            now_ms=now,
        )
        set_logging(store, account_id=s.account_a, name="audit-oss", logging=True, now_ms=now)
        create_trail(
            store,
            buckets,
            TrailParams(
                name="fresh-stream",
                sls_project_arn=SLS.format(account=s.account_a),
                trail_region="cn-beijing",
            ),
            account_id=s.account_a,
            home_region=settings.region,
            now_ms=now,
        )
        # Account C is a member of A's organization: it sees A's organization trail, nothing else of A's.
        add_member(store, management_account_id=s.account_a, member_account_id=ACCOUNT_C, now_ms=now)
        create_trail(
            store,
            buckets,
            TrailParams(
                name="org-wide", sls_project_arn=SLS.format(account=s.account_a), is_organization_trail=True
            ),
            account_id=s.account_a,
            home_region=settings.region,
            now_ms=now,
        )
        create_trail(
            store,
            buckets,
            TrailParams(name="b-only-trail", sls_project_arn=SLS.format(account=ACCOUNT_B)),
            account_id=ACCOUNT_B,
            home_region=settings.region,
            now_ms=now,
        )
        for trail in ("audit-oss", "org-wide"):
            assert store.put_insight_selectors(
                account_id=s.account_a, trail_name=trail, selectors=["TrailConcealmentInsight"], now_ms=now
            )
        # A logging run starts at the log's head when the engine takes the trail up (within ~2 s);
        # the events that arrive after that are what it delivers.
        _wait(
            "delivery to take the trail up",
            lambda: store.list_checkpoints(account_id=s.account_a, trail_name="audit-oss"),
        )
        store.append([event_from_mapping(_event(i, s.account_a, now_ms())) for i in range(5)])
        yield s


def _key(site: Site, *actions: str, account: str | None = None) -> tuple[str, str]:
    settings = site.server.settings
    sealer = Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
    made = create_access_key(
        site.server.store,
        sealer,
        account_id=account or site.account_a,
        allowed_actions=tuple(f"actiontrail:{a}" for a in actions),
    )
    return made.key.access_key_id, made.secret


def _row(html: str, name: str) -> str:
    found = re.search(rf'<tr data-trail="{name}".*?</tr>', html, re.S)
    assert found, f"no row for trail {name}"
    return found.group(0)


# -- the trails page ------------------------------------------------------------------------------


def test_trails_page_lists_the_accounts_trails_with_delivery_status(tsite: Site) -> None:
    with signed_in_client(tsite, tsite.key_a) as client:
        search = client.get("/console/search")
        assert 'href="/console/trails"' in search.text and "coming" not in search.text

        def delivered() -> str | None:
            page = client.get("/console/trails")
            assert page.status_code == 200
            row = _row(page.text, "audit-oss")
            return page.text if "data-delivery" in row else None

        html = _wait("the first OSS delivery", delivered)
        oss = _row(html, "audit-oss")
        assert 'data-status="Enable"' in oss and BUCKET in oss and PREFIX in oss
        assert "<td>Write</td>" in oss and "<td>All</td>" in oss
        assert 'data-organization="false"' in oss
        assert "bucket ok" in oss and 'data-healthy="true"' in oss
        # The time shown is the one GetTrailStatus reports: the delivery checkpoint in the store.
        checkpoints = tsite.server.store.list_checkpoints(account_id=tsite.account_a, trail_name="audit-oss")
        times = [format_wire_time(cp.last_delivery_ms) for cp in checkpoints if cp.last_delivery_ms]
        assert any(t in oss for t in times)
        delivered_files = list((tsite.server.settings.resolved_oss_dir() / BUCKET).rglob("*"))
        assert any(f.is_file() for f in delivered_files)

        fresh = _row(html, "fresh-stream")
        assert 'data-status="Fresh"' in fresh and "cn-beijing" in fresh
        assert SLS.format(account=tsite.account_a) in fresh
        # No NATS on this server: the stream destination is configured but not healthy, and says why.
        assert 'data-sink="stream"' in fresh and 'data-healthy="false"' in fresh
        assert "no stream configured on this server" in fresh
        assert "not logging" in fresh
        assert "b-only-trail" not in html
        # The insight records' delivery, which GetTrailStatus has no field for, beside it.
        assert "data-insights>Insights: TrailConcealmentInsight · 0 records delivered" in oss
        assert "data-insights-error" not in oss
        org = _row(html, "org-wide")
        assert "an organization trail delivers none" in org and "records delivered" not in org


def test_account_b_sees_none_of_as_trails_nor_proofs(tsite: Site) -> None:
    with signed_in_client(tsite, tsite.key_b) as client:
        html = client.get("/console/trails").text
        assert "b-only-trail" in html
        assert "audit-oss" not in html and "fresh-stream" not in html and BUCKET not in html
        foreign = client.get(f"/console/proof/{urllib.parse.quote(f'late-{tsite.account_a}-0')}")
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "NotFound"


def test_organization_trail_is_flagged_and_shown_to_a_member(tsite: Site) -> None:
    with signed_in_client(tsite, tsite.key_a) as client:
        row = _row(client.get("/console/trails").text, "org-wide")
        assert 'data-organization="true"' in row and "rd-" in row and "owned by" not in row
    with signed_in_client(tsite, _key(tsite, account=ACCOUNT_C)) as client:
        html = client.get("/console/trails").text
        row = _row(html, "org-wide")
        assert 'data-organization="true"' in row and f"owned by management account {tsite.account_a}" in row
        assert "audit-oss" not in html and "fresh-stream" not in html and BUCKET not in html


def test_trails_need_describe_trails_and_status_needs_get_trail_status(tsite: Site) -> None:
    with signed_in_client(tsite, _key(tsite, "LookupEvents")) as client:
        refused = client.get("/console/trails")
        assert refused.status_code == 403 and "actiontrail:DescribeTrails" in refused.text
    with signed_in_client(tsite, _key(tsite, "DescribeTrails")) as client:
        html = client.get("/console/trails").text
        assert 'data-trail="audit-oss"' in html
        assert "may not use actiontrail:GetTrailStatus" in html and 'data-sink="oss"' not in html
    with signed_in_client(tsite, _key(tsite, "DescribeTrails", "GetTrailStatus")) as client:
        assert 'data-sink="oss"' in client.get("/console/trails").text


# -- the integrity mark ---------------------------------------------------------------------------


def _mark(client: httpx.Client, event_id: str) -> tuple[str, str]:
    html = client.get(f"/console/event/{urllib.parse.quote(event_id, safe='')}").text
    found = re.search(r'<dd class="mark[^"]*" data-mark="([a-z-]+)"[^>]*>(.*?)</dd>', html, re.S)
    assert found, "no integrity mark on the event page"
    return found.group(1), found.group(2)


def check_proof_json(body: dict[str, Any], stored_body: bytes, verifier: Any) -> int:
    """Verify a proof as an outsider would: the signature, then the path to the signed root."""
    checkpoint = open_checkpoint(body["checkpoint"], [verifier])
    assert checkpoint.size == body["treeSize"]
    path = [base64.b64decode(h) for h in body["inclusionPath"]]
    verify_inclusion(body["leafIndex"], body["treeSize"], leaf_hash(stored_body), path, checkpoint.root)
    return checkpoint.size


def test_a_sequenced_event_is_marked_and_its_proof_is_the_apis(tsite: Site) -> None:
    store, account = tsite.server.store, tsite.account_a
    event_id = f"late-{account}-3"
    with signed_in_client(tsite, tsite.key_a) as client:
        state, text = _wait(
            "the event to be sequenced", lambda: (m := _mark(client, event_id))[0] == "checked" and m
        )
        size = store.log_head(account_id=account).size  # type: ignore[union-attr]
        assert f"In the log, proof checked against checkpoint of size {size}." in text
        link = re.search(r'href="(/console/proof/[^"]+)"', text)
        assert link and link.group(1) == f"/console/proof/{urllib.parse.quote(event_id, safe='')}"
        proof = client.get(link.group(1))
        assert proof.status_code == 200 and proof.headers["content-type"] == "application/json"
    # The same JSON as the API's, which wants a bearer token.
    from trailhouse.model.credentials import TokenScope
    from trailhouse.service.credentials import create_token

    token = create_token(store, account_ids=(account,), all_accounts=False, scopes=(TokenScope.READ,))
    api = httpx.get(
        f"{tsite.url}/api/v1/events/{event_id}/proof", headers={"authorization": f"Bearer {token.secret}"}
    )
    assert api.status_code == 200 and orjson.loads(proof.content) == api.json()
    stored = next(
        e
        for e in store.iter_events(account_id=account, flt=_all(), descending=True)
        if e.event_id == event_id
    )
    verifier = load_log_signer(
        tsite.server.settings.log_key, tsite.server.settings.resolved_data_dir()
    ).verifier
    assert check_proof_json(api.json(), stored.body, verifier) == size


def _all() -> Any:
    from trailhouse.model.query import EventFilter

    return EventFilter(-(1 << 62), 1 << 62)


# -- in Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tbrowser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium): browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tpage(tbrowser: Any, tsite: Site) -> Iterator[Any]:
    context = tbrowser.new_context(viewport={"width": 1440, "height": 900}, base_url=tsite.url)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()


def _browser_sign_in(page: Any, key: tuple[str, str]) -> None:
    page.goto("/console/sign-in")
    page.fill("input[name=key_id]", key[0])
    page.fill("input[name=secret]", key[1])
    page.click("#sign-in-key button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/search.*"))


def test_browser_trails_page_from_the_navigation(tpage: Any, tsite: Site) -> None:
    _browser_sign_in(tpage, tsite.key_a)
    tpage.click("header nav a:text('Trails')")
    tpage.wait_for_url(re.compile(r".*/console/trails$"))
    assert tpage.locator("header nav a[aria-current=page]").inner_text() == "Trails"
    _wait(
        "the first OSS delivery",
        lambda: tpage.reload() or tpage.locator("tr[data-trail=audit-oss] [data-delivery]").count(),
    )
    rows = tpage.locator("table.trails tbody tr")
    assert [rows.nth(i).get_attribute("data-trail") for i in range(rows.count())] == [
        "audit-oss",
        "fresh-stream",
        "org-wide",
    ]
    assert tpage.locator("tr[data-trail=audit-oss] td").nth(1).inner_text().startswith("Enable")
    assert tpage.locator("tr[data-trail=fresh-stream] td").nth(1).inner_text().startswith("Fresh")
    shot(tpage, "09-trails")


def test_browser_event_page_shows_the_checked_mark_and_opens_the_proof(tpage: Any, tsite: Site) -> None:
    _browser_sign_in(tpage, tsite.key_a)
    event_id = f"late-{tsite.account_a}-1"
    url = f"/console/event/{urllib.parse.quote(event_id, safe='')}"

    def checked() -> bool:
        tpage.goto(url)
        return tpage.locator("dd.mark").get_attribute("data-mark") == "checked"

    _wait("the event to be sequenced", checked)
    mark = tpage.locator("dd.mark")
    assert "proof checked against checkpoint of size" in mark.inner_text()
    shot(tpage, "10-event-integrity")
    mark.locator("a").click()
    tpage.wait_for_url(re.compile(r".*/console/proof/.*"))
    body = orjson.loads(tpage.locator("body").inner_text())
    assert body["eventId"] == event_id and body["treeSize"] >= 1


def test_browser_a_tampered_event_shows_a_failed_mark(tpage: Any, tsite: Site) -> None:
    from tests.console.test_backends import _sql
    from trailhouse.storage import codec

    store, account = tsite.server.store, tsite.account_a
    event_id = f"late-{account}-4"
    _wait(
        "the event to be sequenced",
        lambda: store.log_leaf_index(account_id=account, seq=_stored(tsite, event_id).seq) is not None,
    )
    stored = _stored(tsite, event_id)
    forged = stored.body.replace(b'"DeleteBucket"', b'"GetBucketInfo"')
    _sql(
        tsite.server.settings.db_url,
        "UPDATE events SET body = ? WHERE seq = ?",
        (codec.pack(forged), stored.seq),
    )
    _browser_sign_in(tpage, tsite.key_a)
    tpage.goto(f"/console/event/{urllib.parse.quote(event_id, safe='')}")
    mark = tpage.locator("dd.mark")
    assert mark.get_attribute("data-mark") == "failed"
    assert "does not match the logged one" in mark.inner_text()
    assert tpage.locator("h1").inner_text().startswith("GetBucketInfo")  # the page shows what is stored
    shot(tpage, "11-event-tampered")


def _stored(site: Site, event_id: str) -> Any:
    events = site.server.store.iter_events(account_id=site.account_a, flt=_all(), descending=True)
    return next(e for e in events if e.event_id == event_id)
