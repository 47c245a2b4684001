"""The console in Debian's Chromium: a person's way through it, from sign-in to sign-out.

Each test checks what a person reads on the page against what the store holds for the same
question, and saves a screenshot of the page to test-artifacts/console/.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from trailhouse.model.query import Attr, EventFilter
from trailhouse.model.times import DAY_MS, parse_event_time

from .conftest import ARTIFACTS, Site, browser_sign_in, shot, window_query

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-search.png"


def _params(url: str) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)


def _row_times(page: Any) -> list[str]:
    return page.locator("table.events td.time a").all_inner_texts()


def _count(site: Site, flt: EventFilter, account: str | None = None) -> int:
    store = site.server.store
    return sum(1 for _ in store.iter_events(account_id=account or site.account_a, flt=flt, descending=True))


def test_sign_in_and_search_with_combined_filters_then_deep_link(page: Any, browser: Any, site: Site) -> None:
    page.goto("/console/search")
    page.wait_for_url(re.compile(r".*/console/sign-in\?next=.*"))
    shot(page, "01-sign-in")
    page.fill("input[name=key_id]", site.key_a[0])
    page.fill("input[name=secret]", site.key_a[1])
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_url(re.compile(r".*/console/search.*"))
    assert page.locator("[data-account]").inner_text() == site.account_a

    # Combine: a prefix, read only, a network, successes only, over 30 days.
    start = site.now_ms - 30 * DAY_MS
    page.fill("input[name=start]", re.sub(r"\.\d+Z$", "Z", _iso(start)))
    page.fill("input[name=EventName]", "Describe*")
    page.select_option("select[name=EventRW]", "Read")
    page.fill("input[name=SourceIpAddress]", "47.96.0.0/16")
    page.select_option("select[name=failed]", "false")
    page.click("#search-form button[type=submit]")
    page.wait_for_load_state()
    params = _params(page.url)
    assert ("EventName", "Describe*") in params and ("SourceIpAddress", "47.96.0.0/16") in params
    assert ("EventRW", "Read") in params and ("failed", "false") in params
    assert not any(v == "" for _, v in params), "empty fields stay out of the URL"
    assert not any(k in ("col", "cols") for k, _ in params), "default columns stay out of the URL"
    shot(page, "02-search-combined")

    import ipaddress

    want = EventFilter(
        parse_event_time(dict(params)["start"]),
        parse_event_time(dict(params)["end"]),
        equals={Attr.EVENT_RW: ("Read",)},
        prefixes={Attr.EVENT_NAME: "Describe"},
        networks=(ipaddress.ip_network("47.96.0.0/16"),),
        has_error=False,
    )
    total = _count(site, want)
    assert total > 0, "the demo data should match this search"
    assert int(page.locator("[data-total]").get_attribute("data-total")) == total
    rows = page.locator("table.events tbody tr")
    assert rows.count() == min(50, total)
    names = page.locator("table.events tbody tr td:nth-child(2)").all_inner_texts()
    assert all(n.startswith("Describe") for n in names)
    ips = page.locator("table.events tbody tr td:nth-child(6)").all_inner_texts()
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("47.96.0.0/16") for ip in ips)
    times = _row_times(page)
    assert times == sorted(times, reverse=True), "newest first"

    # Keyset paging: the next page continues strictly older, without repeats.
    if total > 50:
        page.click("a[rel=next]")
        page.wait_for_load_state()
        older = _row_times(page)
        assert older and older[0] <= times[-1] and not set(older) & set(times)

    # A deep link pasted into a fresh browser: sign-in first, then exactly that search.
    link = page.url
    other = browser.new_context(base_url=site.url)
    try:
        fresh = other.new_page()
        fresh.goto(link)
        fresh.wait_for_url(re.compile(r".*/console/sign-in.*"))
        fresh.fill("input[name=key_id]", site.key_a[0])
        fresh.fill("input[name=secret]", site.key_a[1])
        fresh.click("#sign-in-key button[type=submit]")
        fresh.wait_for_url(re.compile(r".*/console/search\?.*"))
        assert _params(fresh.url) == _params(link)
        assert int(fresh.locator("[data-total]").get_attribute("data-total")) == total
    finally:
        other.close()


def _iso(ms: int) -> str:
    from trailhouse.model.times import format_wire_time

    return format_wire_time(ms)


def test_choose_columns(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 7)}")
    page.click("details.columns summary")
    page.uncheck("input[name=col][value=resources]")
    page.check("input[name=col][value=agent]")
    page.click("#search-form button[type=submit]")
    page.wait_for_load_state()
    headings = page.locator("table.events thead th").all_inner_texts()
    assert "User agent" in headings and "Resources" not in headings
    assert ("cols", "name,service,user,key,ip,rw,error,agent") in _params(page.url)
    assert not [k for k, _ in _params(page.url) if k == "col"]
    # Links the page makes keep the choice.
    page.click("a[rel=next]")
    page.wait_for_load_state()
    assert ("cols", "name,service,user,key,ip,rw,error,agent") in _params(page.url)
    assert "User agent" in page.locator("table.events thead th").all_inner_texts()
    # "Last 24 hours" keeps the search and the columns, over the day ending now.
    page.click("a.quick:text('24 hours')")
    page.wait_for_load_state()
    after = dict(_params(page.url))
    assert parse_event_time(after["end"]) - parse_event_time(after["start"]) == DAY_MS
    assert after["cols"] == "name,service,user,key,ip,rw,error,agent"


def test_drag_across_the_histogram_zooms_in(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 30)}")
    before = _params(page.url)
    total_before = int(page.locator("[data-total]").get_attribute("data-total"))
    shot(page, "03-search-histogram")
    box = page.locator("svg.histogram").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.55, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=8)
    page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=8)
    with page.expect_navigation():
        page.mouse.up()
    after = dict(_params(page.url))
    span_before = parse_event_time(dict(before)["end"]) - parse_event_time(dict(before)["start"])
    span_after = parse_event_time(after["end"]) - parse_event_time(after["start"])
    assert 0.3 * span_before < span_after < 0.5 * span_before
    assert parse_event_time(after["start"]) > parse_event_time(dict(before)["start"])
    total_after = int(page.locator("[data-total]").get_attribute("data-total"))
    flt = EventFilter(parse_event_time(after["start"]), parse_event_time(after["end"]) + 999)
    assert total_after == _count(site, flt) <= total_before
    shot(page, "04-search-zoomed")


def test_a_histogram_bar_is_reached_and_followed_with_the_keyboard(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 7)}")
    bars = page.locator("svg.histogram a.bar")
    busy = next(i for i in range(bars.count()) if int(bars.nth(i).get_attribute("data-count")) > 0)
    bars.nth(busy).focus()
    count = int(bars.nth(busy).get_attribute("data-count"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert int(page.locator("[data-total]").get_attribute("data-total")) == count
    span = parse_event_time(dict(_params(page.url))["end"]) - parse_event_time(
        dict(_params(page.url))["start"]
    )
    assert span < 7 * DAY_MS / 50


def test_open_an_event_copy_it_and_follow_same_access_key(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 7)}&EventAccessKeyId={site.leaked_key}")
    page.locator("table.events td.time a").first.click()
    page.wait_for_url(re.compile(r".*/console/event/.*"))
    event_id = urllib.parse.unquote(page.url.rsplit("/event/", 1)[1])
    json_text = page.locator("#event-json").inner_text()
    assert f'"eventId": "{event_id}"' in json_text
    page.click("button[data-copy-target=event-json]")
    page.wait_for_selector("button.copied")
    assert page.evaluate("navigator.clipboard.readText()") == json_text
    shot(page, "05-event")
    labels = page.locator("nav.related a").all_inner_texts()
    assert {"Same request", "Same AccessKey", "Same source IP"} <= set(labels)
    page.click("nav.related a:text('Same AccessKey')")
    page.wait_for_load_state()
    assert ("EventAccessKeyId", site.leaked_key) in _params(page.url)
    keys = page.locator("[data-access-key]").all_inner_texts()
    assert keys and set(keys) == {site.leaked_key}


def test_access_key_page_with_a_suspected_leak_time(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto("/console/access-key")
    page.fill("input[name=key]", site.leaked_key)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/console/access-key/{site.leaked_key}.*"))
    # The story's attack starts at 18:00-19:30 UTC on the day three days back, so "now - 3 days"
    # falls after it at some hours of the day; four days back is always before it.
    since = _iso(site.now_ms - 4 * DAY_MS)
    page.fill("input[name=since]", since)
    page.click("form.inline-form button[type=submit]")
    page.wait_for_load_state()
    assert ("since", since) in _params(page.url)
    text = page.locator("main").inner_text()
    assert "IP addresses" in text and "Leaked-key report" in text
    new_ips = page.locator("section[aria-labelledby=report] tr.new td:first-child").all_inner_texts()
    assert set(site.attacker_ips) & set(new_ips), (site.attacker_ips, new_ips)
    shot(page, "06-access-key")


def test_export_the_whole_filtered_set(page: Any, site: Site, tmp_path: Path) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 30)}&EventRW=Write&rows=20")
    total = int(page.locator("[data-total]").get_attribute("data-total"))
    assert total > 20, "more than one page, so the export is more than the page"
    with page.expect_download() as info:
        page.click("a:text('Export CSV')")
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0][0] == "eventTime" and len(rows) - 1 == total
    assert all(r[5] == "Write" for r in rows[1:])
    with page.expect_download() as info:
        page.click("a:text('Export NDJSON')")
    nd = tmp_path / "export.ndjson"
    info.value.save_as(nd)
    assert len(nd.read_text().splitlines()) == total


def test_sign_out_ends_the_session(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.click("header button:text('Sign out')")
    page.wait_for_url(re.compile(r".*/console/sign-in$"))
    page.goto("/console/search")
    page.wait_for_url(re.compile(r".*/console/sign-in\?next=.*"))
    assert not [c for c in page.context.cookies() if c["name"] == "th_console"]


def test_a_key_of_account_b_sees_nothing_of_a(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_b)
    page.goto(f"/console/search?{window_query(site, 90)}")
    assert int(page.locator("[data-total]").get_attribute("data-total")) == len(site.b_event_ids)
    names = set(page.locator("table.events tbody td:nth-child(2)").all_inner_texts())
    assert names == {"TenantBOnly", "StopLogging"}  # B's own events, one of them B's Insights story
    shot(page, "07-tenant-b")
    # A's event, A's keys, A's searches: nothing, and no hint that they exist.
    first_a = next(
        iter(
            site.server.store.iter_events(
                account_id=site.account_a, flt=EventFilter(0, site.now_ms + DAY_MS), descending=True
            )
        )
    )
    response = page.goto(f"/console/event/{urllib.parse.quote(first_a.event_id, safe='')}")
    assert response.status == 404
    page.goto(f"/console/access-key/{site.leaked_key}")
    assert site.leaked_key not in " ".join(page.locator("section td").all_inner_texts())
    assert "No use of this key" in page.locator("main").inner_text()
    page.goto(f"/console/search?{window_query(site, 90)}&EventAccessKeyId={site.leaked_key}")
    assert int(page.locator("[data-total]").get_attribute("data-total")) == 0
    with page.expect_download() as info:
        page.goto(f"/console/search?{window_query(site, 90)}")
        page.click("a:text('Export NDJSON')")
    body = Path(info.value.path()).read_text()
    assert body.count("\n") == len(site.b_event_ids) and site.account_a not in body


def test_hostile_values_render_as_text(page: Any, site: Site) -> None:
    browser_sign_in(page, site.key_a)
    page.goto(
        f"/console/search?{window_query(site, 1)}&SourceIpAddress=198.51.100.66"
        "&cols=name,service,user,key,ip,rw,resources,error,agent,region,type,request"
    )
    assert page.locator("table.events tbody tr").count() == 1
    cells = page.locator("table.events tbody td").all_inner_texts()
    assert any("<script>window.__pwned=1</script>" in c for c in cells), cells
    page.locator("table.events td.time a").first.click()
    page.wait_for_url(re.compile(r".*/console/event/.*"))
    assert "window.__pwned=3" in page.locator("#event-json").inner_text()
    page.click("a[href*='/console/access-key/']")
    page.wait_for_load_state()
    shot(page, "08-hostile-key")
    assert page.evaluate("window.__pwned === undefined")
    assert page.dialogs == []


def test_readme_screenshot_of_the_search_page(page: Any, site: Site) -> None:
    """The picture in the README: the demo's leaked key over the last days, histogram and rows.

    Written to test-artifacts/ on every run; into docs/img/ only with
    TRAILHOUSE_UPDATE_SCREENSHOTS=1, so that running the tests leaves the tree clean.
    """
    browser_sign_in(page, site.key_a)
    page.goto(f"/console/search?{window_query(site, 7)}&EventAccessKeyId={site.leaked_key}&rows=20")
    shot(page, "00-readme-search")
    written = ARTIFACTS / "00-readme-search.png"
    assert written.stat().st_size > 10_000
    if os.environ.get("TRAILHOUSE_UPDATE_SCREENSHOTS") == "1":
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(written, README_SHOT)


def test_a_link_followed_from_another_site_opens_signed_in(page: Any, site: Site) -> None:
    """The link pasted into a ticket: clicking it on another site must not ask to sign in again."""
    browser_sign_in(page, site.key_a)
    target = f"{site.url}/console/search?{window_query(site, 7)}&EventName=ConsoleSignin"
    page.goto("about:blank")
    page.set_content(f'<a id="ticket" href="{target}">the search</a>')
    page.click("#ticket")
    page.wait_for_url(re.compile(r".*/console/search\?.*"))
    assert ("EventName", "ConsoleSignin") in _params(page.url)
    assert page.locator("[data-account]").inner_text() == site.account_a
