"""The console's Insights pages over HTTP and in Chromium, on insights the real detector raised.

The site's detector read the demo data's attack (two IpInsights and a PolicyChangeInsight of the
leaked key), a two-minute burst of deletions (an ApiCallRateInsight with a Start and a later End),
a policy change full of hostile values, and, in account B, a stopped trail.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from markupsafe import escape

from trailhouse.model.insights import InsightQuery, StoredInsight
from trailhouse.model.times import DAY_MS, format_wire_time, parse_wire_time
from trailhouse.service.credentials import create_access_key
from trailhouse.service.insights.browse import list_episodes
from trailhouse.service.pagetoken import PageTokens
from trailhouse.service.secrets import Sealer, load_master_key

from .conftest import (
    ACCOUNT_B,
    B_TRAIL,
    HOSTILE,
    HOSTILE_POLICY_EVENT,
    Site,
    browser_sign_in,
    make_site,
    shot,
    signed_in_client,
    window_query,
)
from .test_http import _assert_escaped

ACCOUNT_C = "5555000011113333"


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


def _starts(insights: list[StoredInsight]) -> list[StoredInsight]:
    """The Start records, newest first (as the store pages them): one per insight."""
    return [i for i in insights if i.state == "Start"]


def _one(site: Site, kind: str, account: str | None = None) -> StoredInsight:
    pool = site.insights_b if account == ACCOUNT_B else site.insights_a
    return next(i for i in _starts(pool) if i.insight_type == kind)


def _rows(html: str) -> list[tuple[str, str]]:
    """(insight id, type) of each row of the list, in page order."""
    return re.findall(r'<tr data-insight="([^"]+)" data-type="([^"]+)">', html)


def _end_of(site: Site, start: StoredInsight) -> StoredInsight:
    return next(i for i in site.insights_a if i.shared_id == start.shared_id and i.state == "End")


# -- the list ----------------------------------------------------------------------------------


def test_every_page_links_insights_from_its_nav(site: Site) -> None:
    with signed_in_client(site, site.key_a) as client:
        for path in (
            f"/console/search?{window_query(site, 1)}",
            "/console/trails",
            "/console/access-key",
            f"/console/access-key/{site.leaked_key}",
            f"/console/event/{urllib.parse.quote(site.hostile_event_id, safe='')}",
            "/console/insights",
            f"/console/insights/{_one(site, 'IpInsight').insight_id}",
            "/console/no-such-page",
        ):
            page = client.get(path)
            assert '<a href="/console/insights"' in page.text, path


def test_the_list_is_one_row_per_insight_newest_first(site: Site) -> None:
    starts = _starts(site.insights_a)
    assert len(starts) == 5 and len(site.insights_a) == 10, "each insight is a Start and an End"
    with signed_in_client(site, site.key_a) as client:
        page = client.get(f"/console/insights?{window_query(site, 30)}")
    assert page.status_code == 200
    assert _rows(page.text) == [(i.insight_id, i.insight_type) for i in starts]
    times = re.findall(r'<td class="time"><a href="/console/insights/[^"]+">([^<]+)</a>', page.text)
    assert times == sorted(times, reverse=True)
    # The burst lasted two minutes (its End is later); a point insight is over at once.
    burst = _one(site, "ApiCallRateInsight")
    row = re.search(rf'<tr data-insight="{burst.insight_id}".*?</tr>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert format_wire_time(_end_of(site, burst).event_time_ms) in row and "at once" not in row
    assert ">105<" in row, "the events of the whole insight, Start's and End's"
    ip = _one(site, "IpInsight")
    row = re.search(rf'<tr data-insight="{ip.insight_id}".*?</tr>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert "at once" in row and site.leaked_key in row and ip.insight_object in row
    assert 'data-insights-enabled="true"' in page.text
    assert page.text.count('data-on="true"') == 7


def test_filter_by_type_key_and_window(site: Site) -> None:
    with signed_in_client(site, site.key_a) as client:
        ips = client.get(f"/console/insights?{window_query(site, 30)}&type=IpInsight")
        assert [t for _, t in _rows(ips.text)] == ["IpInsight", "IpInsight"]
        assert '<option value="IpInsight" selected>' in ips.text
        key = client.get(f"/console/insights?{window_query(site, 30)}&key={site.leaked_key}")
        assert sorted(t for _, t in _rows(key.text)) == ["IpInsight", "IpInsight", "PolicyChangeInsight"]
        by_ip = client.get(f"/console/insights?{window_query(site, 30)}&ip={site.attacker_ips[0]}")
        assert len(_rows(by_ip.text)) == 1
        # The last day holds the burst and the hostile change, not the attack of three days ago.
        day = client.get(f"/console/insights?{window_query(site, 1)}")
        assert sorted(t for _, t in _rows(day.text)) == ["ApiCallRateInsight", "PolicyChangeInsight"]
        old = client.get("/console/insights?start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z")
        assert old.status_code == 200 and "No insights started in this window" in old.text
        assert client.get("/console/insights?type=NotAType").status_code == 400
        assert client.get("/console/insights?start=yesterday").status_code == 400
        assert client.get("/console/insights?rows=7").status_code == 400


@pytest.fixture(scope="module")
def busy_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site whose account A has 45 insights: more than a page of 20."""
    with make_site(tmp_path_factory.mktemp("console-insights"), policy_changes=40) as s:
        yield s


def test_keyset_pages_continue_without_gaps_or_repeats(busy_site: Site) -> None:
    site = busy_site
    starts = _starts(site.insights_a)
    assert len(starts) == 45
    seen: list[str] = []
    with signed_in_client(site, site.key_a) as client:
        url = f"/console/insights?{window_query(site, 30)}&rows=20"
        first = client.get(url)
        while True:
            page = client.get(url)
            assert page.status_code == 200
            seen += [i for i, _ in _rows(page.text)]
            older = re.search(r'href="(/console/insights\?[^"]+)" rel="next"', page.text)
            if older is None:
                assert "No older insights." in page.text
                break
            url = older.group(1).replace("&amp;", "&")
            assert "&cursor=" in url and "&rows=20" in url
        assert seen == [i.insight_id for i in starts], "every insight once, newest first"
        # A position belongs to its list: another filter, or a forged one, is refused.
        cursor = re.search(r"cursor=([^\"&]+)", first.text).group(1)  # type: ignore[union-attr]
        other = client.get(f"/console/insights?{window_query(site, 30)}&type=IpInsight&cursor={cursor}")
        assert other.status_code == 400 and "Start the list again" in other.text
        assert client.get(f"/console/insights?{window_query(site, 30)}&cursor=AAAA").status_code == 400
    # The same position opened by account B's session is not B's.
    with signed_in_client(site, site.key_b) as client:
        foreign = client.get(f"/console/insights?{window_query(site, 30)}&cursor={cursor}")
        assert foreign.status_code == 400


def test_episodes_page_whole_even_when_start_and_end_fall_on_two_record_pages(busy_site: Site) -> None:
    """The service pages Start records: a page of 1 never shows an insight twice or skips one."""
    site = busy_site
    store = site.server.store
    tokens = PageTokens.for_store(store)
    query = InsightQuery(0, site.now_ms + DAY_MS)
    seen: list[str] = []
    token = None
    for _ in range(100):
        page = list_episodes(
            store,
            tokens,
            account_id=site.account_a,
            query=query,
            limit=1,
            next_token=token,
            digest="d",
            token_kind="test",
        )
        seen += [e.record.insight_id for e in page.episodes]
        assert all(e.end is not None and e.end.shared_id == e.record.shared_id for e in page.episodes)
        token = page.next_token
        if token is None:
            break
    assert seen == [i.insight_id for i in _starts(site.insights_a)]


def test_insights_status_says_which_types_are_on_and_how_to_enable_them(site: Site) -> None:
    with signed_in_client(site, site.key_b) as client:
        page = client.get("/console/insights")
        assert 'data-insight-type="TrailConcealmentInsight" data-on="true"' in page.text
        assert page.text.count('data-on="false"') == 6 and "EnableInsight" in page.text
    with signed_in_client(site, _key(site, account=ACCOUNT_C)) as client:
        page = client.get("/console/insights")
        assert page.status_code == 200 and 'data-insights-enabled="false"' in page.text
        assert f"Insights are not enabled for account {ACCOUNT_C}" in page.text
        assert "<code>EnableInsight</code>" in page.text
        assert f"trailhouse insights enable all --account {ACCOUNT_C}" in page.text
        key = client.get(f"/console/access-key/{site.leaked_key}")
        assert "Insights are not enabled for this account" in key.text


def test_insights_need_lookup_insight_events_and_the_status_get_insight_types(site: Site) -> None:
    with signed_in_client(site, site.key_ips_only) as client:
        page = client.get("/console/insights")
        assert page.status_code == 403 and "actiontrail:LookupInsightEvents" in page.text
        assert client.get(f"/console/insights/{_one(site, 'IpInsight').insight_id}").status_code == 403
        key = client.get(f"/console/access-key/{site.leaked_key}")
        assert key.status_code == 200 and 'id="key-insights"' not in key.text
    with signed_in_client(site, _key(site, "LookupInsightEvents")) as client:
        page = client.get(f"/console/insights?{window_query(site, 30)}")
        assert page.status_code == 200 and len(_rows(page.text)) == 5
        assert "may not use actiontrail:GetInsightTypes" in page.text and "data-on=" not in page.text


# -- one insight -------------------------------------------------------------------------------


def test_an_ip_insight_explains_itself_and_links_its_event(site: Site) -> None:
    ip = _one(site, "IpInsight")
    body = orjson.loads(ip.body)
    trigger = body["triggeringEventIds"][0]
    with signed_in_client(site, site.key_a) as client:
        page = client.get(f"/console/insights/{ip.insight_id}")
        assert page.status_code == 200
        text = page.text
        assert f"data-insight-id>{ip.insight_id}<" in text and ip.shared_id in text
        assert str(escape(body["explanation"])) in text
        assert f'href="/console/access-key/{site.leaked_key}"' in text
        assert "ci-deploy" in text, "the user of the triggering event"
        assert f"<code data-object>{ip.insight_object}</code>" in text
        assert f'href="/console/event/{urllib.parse.quote(trigger, safe="")}"' in text
        stats = body["insightDetails"]["insightContext"]["statistics"]
        observed = re.search(r'<tr data-stat="baseline">.*?</tr>', text, re.S).group(0)  # type: ignore[union-attr]
        assert (
            f"<td>{stats['baseline']}</td>" in observed
            and f"<td>{stats['baselineDuration']}</td>" in observed
        )
        assert "network it had used" in text, "what the numbers mean for this type"
        assert "data-ratio" not in text, "a count per network is no rate to divide"
        # The search links: this key in the insight's minute, and three days around.
        links = [u.replace("&amp;", "&") for u in re.findall(r'href="(/console/search\?[^"]+)"', text)]
        minute = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query)) for u in links]
        own = next(p for p in minute if p.get("EventAccessKeyId") == site.leaked_key)
        assert parse_wire_time(own["start"]) <= ip.event_time_ms <= parse_wire_time(own["end"])
        assert parse_wire_time(own["end"]) - parse_wire_time(own["start"]) < 120_000
        search = client.get(links[0])
        assert (
            search.status_code == 200
            and f'href="/console/event/{urllib.parse.quote(trigger, safe="")}"' in search.text
        )
        # The same insight by its End's id or by the shared id.
        for other in (_end_of(site, ip).insight_id, ip.shared_id, ip.shared_id.lower()):
            same = client.get(f"/console/insights/{other}")
            assert same.status_code == 200 and f"data-insight-id>{ip.insight_id}<" in same.text


def test_a_rate_insight_shows_start_and_whole_statistics_and_every_triggering_event(site: Site) -> None:
    burst = _one(site, "ApiCallRateInsight")
    end = orjson.loads(_end_of(site, burst).body)
    with signed_in_client(site, site.key_a) as client:
        text = client.get(f"/console/insights/{burst.insight_id}").text
    assert "When it started (Start record)" in text and "The whole insight (End record)" in text
    assert "<td data-ratio>no calls at all in the baseline</td>" in text
    assert str(escape(end["explanation"])) in text and "105 in 2 minute(s)" in end["explanation"]
    assert (
        "<td>30</td>" in text
        and f"<td>{end['insightDetails']['insightContext']['statistics']['insightCount']}</td>" in text
    )
    linked = re.findall(r'<tr data-event="([^"]+)">', text)
    assert sorted(linked) == sorted(site.burst_ids), "all 105 calls, each linked to its event page"
    assert f'href="/console/access-key/{site.burst_key}"' in text
    assert "This API in the insight&#39;s minutes" in text or "This API in the insight's minutes" in text


def test_account_b_never_sees_as_insights_nor_a_bs(site: Site) -> None:
    b_start = _one(site, "TrailConcealmentInsight", ACCOUNT_B)
    b_ids = {i.insight_id for i in site.insights_b} | {b_start.shared_id}
    with signed_in_client(site, site.key_a) as client:
        listed = client.get(f"/console/insights?{window_query(site, 90)}")
        assert B_TRAIL not in listed.text and "TrailConcealmentInsight</td>" not in listed.text
        for insight_id in b_ids:  # guessing (or knowing) B's ids
            page = client.get(f"/console/insights/{insight_id}")
            assert page.status_code == 404 and B_TRAIL not in page.text
        assert (
            client.get(f"/console/insights?{window_query(site, 90)}&key=LTAItenantBkey000001").text.count(
                "<tr data-insight"
            )
            == 0
        )
    with signed_in_client(site, site.key_b) as client:
        own = client.get(f"/console/insights?{window_query(site, 90)}")
        assert _rows(own.text) == [(b_start.insight_id, "TrailConcealmentInsight")] and B_TRAIL in own.text
        for insight in site.insights_a:
            assert client.get(f"/console/insights/{insight.insight_id}").status_code == 404
        assert site.leaked_key not in own.text
        key = client.get(f"/console/access-key/{site.leaked_key}")
        assert "No insight names this AccessKey" in key.text


def test_the_access_key_page_shows_that_keys_insights(site: Site) -> None:
    with signed_in_client(site, site.key_a) as client:
        page = client.get(f"/console/access-key/{site.leaked_key}")
        section = re.search(r'<section aria-labelledby="key-insights">.*?</section>', page.text, re.S).group(
            0
        )  # type: ignore[union-attr]
        assert sorted(t for _, t in _rows(section)) == ["IpInsight", "IpInsight", "PolicyChangeInsight"]
        assert "/console/insights?" in section and f"key={site.leaked_key}" in section
        quiet = client.get(f"/console/access-key/{site.key_a[0]}")
        assert "No insight names this AccessKey" in quiet.text


def test_hostile_values_in_insights_are_escaped(site: Site) -> None:
    hostile = next(i for i in _starts(site.insights_a) if i.insight_object == HOSTILE["resource"])
    assert HOSTILE_POLICY_EVENT in orjson.loads(hostile.body)["triggeringEventIds"]
    with signed_in_client(site, site.key_a) as client:
        listed = client.get(f"/console/insights?{window_query(site, 1)}")
        _assert_escaped(listed.text, "insights list")
        assert str(escape(HOSTILE["resource"])) in listed.text and str(escape(HOSTILE["key"])) in listed.text
        page = client.get(f"/console/insights/{hostile.insight_id}")
        assert page.status_code == 200
        _assert_escaped(page.text, "insight")
        assert "<script>k</script>" not in page.text
        assert str(escape(HOSTILE["user"])) in page.text, "the triggering event's user"
        assert f'href="/console/event/{urllib.parse.quote(HOSTILE_POLICY_EVENT, safe="")}"' in page.text
        echoed = client.get(
            "/console/insights?"
            + urllib.parse.urlencode({"key": HOSTILE["key"], "ip": HOSTILE["user"], **_window(site)})
        )
        assert echoed.status_code == 200
        _assert_escaped(echoed.text, "insights form")
        assert "<script>k</script>" not in echoed.text
        key = client.get(f"/console/access-key/{urllib.parse.quote(HOSTILE['key'], safe='')}")
        _assert_escaped(key.text, "access key insights")
        assert 'id="key-insights"' in key.text and "PolicyChangeInsight" in key.text
        for response in (listed, page):
            assert "script-src 'self'" in response.headers["content-security-policy"]


def _window(site: Site) -> dict[str, str]:
    return {"start": format_wire_time(site.now_ms - DAY_MS), "end": format_wire_time(site.now_ms + 60_000)}


@pytest.mark.parametrize(
    "path",
    [
        "/console/insights/%00",
        "/console/insights/" + "A" * 5000,
        "/console/insights/not-an-id",
        "/console/insights/%3Cscript%3E",
        "/console/insights?start=0001-01-01T00:00:00Z&end=9999-12-31T23:59:59Z",
        "/console/insights?start=-5000&end=5000&key=%00",
        "/console/insights?end=2020-01-01T00:00:00Z&start=2021-01-01T00:00:00Z",
    ],
)
def test_odd_ids_and_windows_are_answered_not_500(site: Site, path: str) -> None:
    with signed_in_client(site, site.key_a) as client:
        r = client.get(path)
        assert r.status_code in (200, 400, 404), (path, r.status_code, r.text[:300])
        assert "<script>" not in r.text.split("</header>")[-1]


def test_signed_out_the_insights_pages_ask_for_sign_in(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        r = client.get("/console/insights?type=IpInsight")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in?next=")


# -- in the browser ----------------------------------------------------------------------------


def test_browse_from_the_nav_to_an_insight_and_its_event(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.click("header nav >> text=Insights")
    page.wait_for_url(re.compile(r".*/console/insights$"))
    assert page.locator("header nav a[aria-current=page]").inner_text() == "Insights"
    # The default window (7 days) holds all five of A's insights; the attack is three days back.
    assert page.locator("table.insights tbody tr").count() == 5
    shot(page, "20-insights-list")

    page.select_option("select[name=type]", "IpInsight")
    page.click("#insights-form button[type=submit]")
    page.wait_for_url(re.compile(r".*type=IpInsight.*"))
    types = page.locator("table.insights tbody tr td:nth-child(3)").all_inner_texts()
    assert types == ["IpInsight", "IpInsight"]
    assert [a for a in page.locator("table.insights td:nth-child(5)").all_inner_texts()] == [
        site.leaked_key
    ] * 2
    shot(page, "21-insights-filtered")

    # The oldest: the attacker's first call, from the first new network.
    page.locator("table.insights tbody tr").last.locator("td.time a").click()
    page.wait_for_url(re.compile(r".*/console/insights/[0-9A-F-]+$"))
    assert page.locator("h1").inner_text().startswith("IpInsight")
    assert site.attacker_ips[0] in page.locator("[data-explanation]").inner_text()
    assert page.locator("table.stats").count() == 1
    assert page.locator("[data-access-key]").first.inner_text() == site.leaked_key
    shot(page, "22-insight")

    link = page.locator("table.triggers td.time a").first
    event_id = page.locator("table.triggers tbody tr").first.get_attribute("data-event")
    link.click()
    page.wait_for_url(re.compile(r".*/console/event/.*"))
    assert event_id and event_id in page.locator("dl.facts").inner_text()
    assert site.attacker_ips[0] in page.locator("dl.facts").inner_text()
    assert "GetCallerIdentity" in page.locator("h1").inner_text()
    shot(page, "23-insight-trigger-event")
    assert not page.evaluate("window.__pwned"), "no script of an event ran"


def test_the_hostile_insight_runs_no_script_in_the_browser(page: Any, site: Site) -> None:
    hostile = next(i for i in _starts(site.insights_a) if i.insight_object == HOSTILE["resource"])
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/insights?{window_query(site, 1)}")
    page.goto(f"/console/insights/{hostile.insight_id}")
    assert page.locator("[data-object]").inner_text() == HOSTILE["resource"]
    assert not page.evaluate("window.__pwned") and not page.dialogs
