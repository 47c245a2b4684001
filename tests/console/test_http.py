"""The console over plain HTTP against a live server: sessions, CSRF, throttling, permissions, escaping."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from trailhouse.model.credentials import KeyStatus
from trailhouse.model.times import DAY_MS, format_wire_time

from .conftest import (
    ACCOUNT_B,
    HOSTILE,
    Site,
    csrf_of,
    http_sign_in,
    make_site,
    signed_in_client,
    window_query,
)


def test_session_cookie_is_http_only_strict_and_expires(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        r = http_sign_in(client, *site.key_a)
        cookie = next(
            v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("th_console=")
        )
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "max-age", "path"} <= attrs
        assert "samesite=lax" in cookie.lower()  # links from tickets open signed in; forms carry CSRF
        assert "Path=/console" in cookie


def test_sign_in_refuses_a_form_without_its_csrf_value(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        client.get("/console/sign-in")
        key_id, secret = site.key_a
        for csrf in ("", "forged-value"):
            r = client.post("/console/sign-in", data={"csrf": csrf, "key_id": key_id, "secret": secret})
            assert r.status_code == 403 and "th_console=" not in r.headers.get("set-cookie", "")
    # A page of another site can post the form but cannot know the cookie's value.
    with httpx.Client(base_url=site.url) as attacker:
        r = attacker.post("/console/sign-in", data={"csrf": "guess", "key_id": key_id, "secret": secret})
        assert r.status_code == 403


def test_sign_out_needs_the_session_csrf_value(site: Site) -> None:
    with signed_in_client(site, site.key_a) as client:
        r = client.post("/console/sign-out", data={"csrf": "not-it"})
        assert r.status_code == 403
        assert client.get("/console/search").status_code == 200, "the session survives a forged sign-out"
        page = client.get("/console/search")
        r = client.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert client.get("/console/search").status_code == 303


def test_wrong_secrets_unknown_keys_and_disabled_keys_are_refused_alike(short_site: Site) -> None:
    site = short_site  # a server of its own: these failures count towards this client's throttle
    with httpx.Client(base_url=site.url) as client:
        answers = [
            http_sign_in(client, site.key_a[0], "wrong-secret"),
            http_sign_in(client, "LTAIdoesnotexist000000", "whatever"),
            http_sign_in(client, site.key_a[0], ""),
        ]
        site.server.store.set_access_key_status(site.key_ips_only[0], KeyStatus.INACTIVE)
        answers.append(http_sign_in(client, *site.key_ips_only))
    assert [r.status_code for r in answers] == [401, 401, 401, 401]
    assert len({re.search(r'role="alert">([^<]*)<', r.text).group(1) for r in answers[:2]}) == 1  # type: ignore[union-attr]


def test_disabling_a_key_ends_its_sessions(short_site: Site) -> None:
    with signed_in_client(short_site, short_site.key_b) as client:
        assert client.get("/console/search").status_code == 200
        short_site.server.store.set_access_key_status(short_site.key_b[0], KeyStatus.INACTIVE)
        assert client.get("/console/search").status_code == 303


def test_a_read_token_signs_in_to_its_account(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        form = client.get("/console/sign-in")
        r = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "token": site.token_a})
        assert r.status_code == 303
        page = client.get(f"/console/search?{window_query(site, 7)}")
        assert page.status_code == 200 and f'data-account="{site.account_a}"' in page.text
        form = client.get("/console/sign-in")
        r = client.post(
            "/console/sign-in", data={"csrf": csrf_of(form.text), "token": site.token_a, "account": ACCOUNT_B}
        )
        assert r.status_code == 401


def test_redirect_after_sign_in_stays_in_the_console(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        for target in ("https://evil.example/", "//evil.example/console/", "/api/v1/events"):
            form = client.get("/console/sign-in")
            r = client.post(
                "/console/sign-in",
                data={
                    "csrf": csrf_of(form.text),
                    "key_id": site.key_a[0],
                    "secret": site.key_a[1],
                    "next": target,
                },
            )
            assert r.headers["location"] == "/console/search"


def test_a_key_limited_by_allow_sees_only_its_operations(site: Site) -> None:
    with signed_in_client(site, site.key_ips_only) as client:
        assert client.get(f"/console/search?{window_query(site)}").status_code == 403
        assert client.get(f"/console/export?{window_query(site)}&format=csv").status_code == 403
        assert client.get(f"/console/histogram?{window_query(site)}").status_code == 403
        page = client.get(f"/console/access-key/{site.leaked_key}")
        assert page.status_code == 200
        assert (
            "IP addresses" in page.text
            and "Event names" not in page.text
            and "Services</h2>" not in page.text
        )
        assert "The report needs actiontrail:LookupEvents" in page.text
        assert site.attacker_ips[0] in page.text


def test_a_tampered_or_foreign_session_cookie_is_no_session(site: Site, tmp_path: Path) -> None:
    with signed_in_client(site, site.key_a) as client:
        value = client.cookies["th_console"]
        flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
        with httpx.Client(base_url=site.url, cookies={"th_console": flipped}) as other:
            assert other.get("/console/search").status_code == 303


def test_paging_cursor_of_another_search_is_refused(site: Site) -> None:
    with signed_in_client(site, site.key_a) as client:
        page = client.get(f"/console/search?{window_query(site, 30)}&rows=20")
        cursor = re.search(r'cursor=([^"&]+)', page.text).group(1)  # type: ignore[union-attr]
        other = client.get(f"/console/search?{window_query(site, 30)}&rows=20&EventRW=Write&cursor={cursor}")
        assert other.status_code == 400
        bad = client.get(f"/console/search?{window_query(site, 30)}&start=yesterday")
        assert bad.status_code == 400 and "is not a time" in bad.text


@pytest.fixture
def short_site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path, console_session_s=2) as s:
        yield s


def test_a_session_ends_at_its_expiry(short_site: Site) -> None:
    with signed_in_client(short_site, short_site.key_a) as client:
        assert client.get("/console/search").status_code == 200
        time.sleep(2.5)
        r = client.get("/console/search?EventName=X")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in?next=")


def test_repeated_failures_slow_sign_in_down(short_site: Site) -> None:
    site = short_site
    with httpx.Client(base_url=site.url) as client:
        statuses = [http_sign_in(client, site.key_a[0], "wrong").status_code for _ in range(6)]
        assert statuses[:5] == [401] * 5 and statuses[5] == 429
        # Even the right secret waits now: the key id is being guessed.
        r = http_sign_in(client, *site.key_a)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text


# -- hostile values ------------------------------------------------------------------------------

RAW_MARKERS = ("<script>window.__pwned", '<img src=x onerror="', "<svg/onload", "<i>Evil</i>", "<u>")


def _assert_escaped(body: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in body, f"{marker!r} unescaped in {where}"


def test_hostile_values_are_escaped_on_every_page(site: Site) -> None:
    all_cols = "name,service,user,key,ip,rw,resources,error,agent,region,type,request"
    with signed_in_client(site, site.key_a) as client:
        search = client.get(
            f"/console/search?{window_query(site, 1)}&SourceIpAddress=198.51.100.66&cols={all_cols}"
        )
        assert search.status_code == 200
        _assert_escaped(search.text, "search")
        for value in (HOSTILE["agent"], HOSTILE["user"], HOSTILE["event_name"], HOSTILE["key"]):
            assert str(escape(value)) in search.text
        # Searching for the hostile values themselves puts them in the form and in every link.
        query = urllib.parse.urlencode(
            [
                ("User", HOSTILE["user"]),
                ("ResourceName", HOSTILE["resource"]),
                ("EventName", HOSTILE["event_name"]),
            ]
        )
        echoed = client.get(f"/console/search?{window_query(site, 1)}&{query}")
        _assert_escaped(echoed.text, "search form")
        assert 'data-total="1"' in echoed.text
        svg = client.get(f"/console/histogram?{window_query(site, 1)}&{query}")
        _assert_escaped(svg.text, "histogram")
        event = client.get(f"/console/event/{urllib.parse.quote(site.hostile_event_id, safe='')}")
        assert event.status_code == 200
        _assert_escaped(event.text, "event")
        assert str(escape(HOSTILE["message"])) in event.text
        key = client.get(f"/console/access-key/{urllib.parse.quote(HOSTILE['key'], safe='')}")
        assert key.status_code == 200
        _assert_escaped(key.text, "access key")
        since = format_wire_time(site.now_ms - DAY_MS)
        report = client.get(
            f"/console/access-key/{urllib.parse.quote(HOSTILE['key'], safe='')}?since={since}"
        )
        _assert_escaped(report.text, "report")
        assert str(escape(HOSTILE["resource"])) in report.text
        error = client.get("/console/search?start=%3Cscript%3Ealert(1)%3C/script%3E")
        assert error.status_code == 400
        assert "<script>alert(1)</script>" not in error.text
        csv_export = client.get(
            f"/console/export?{window_query(site, 1)}&SourceIpAddress=198.51.100.66&format=csv"
        )
        assert csv_export.headers["content-type"].startswith("text/csv")
        assert HOSTILE["message"] in csv_export.text  # data, served as CSV (not HTML): kept as is
        for response in (search, event, key):
            assert "script-src 'self'" in response.headers["content-security-policy"]


def test_an_empty_search_says_why(site: Site) -> None:
    with signed_in_client(site, site.key_b) as client:
        old = client.get("/console/search?start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z")
        assert old.status_code == 200 and "No events match" in old.text
        assert "its newest event is from" in old.text or "not kept" in old.text


def test_an_unknown_console_page_is_an_html_404(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        r = client.get("/console/no-such-page")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "no page at this address" in r.text


@pytest.mark.parametrize(
    "window",
    [
        "start=0001-01-01T00:00:00Z&end=9999-12-31T23:59:59Z",
        "start=2026-01-01T00:00:00Z&end=2026-01-01T00:00:00Z",
        "start=1970-01-01T00:00:00Z&end=1970-01-01T00:00:01Z&EventName.prefix=&User=%00",
        "start=-5000&end=5000&SourceIpAddress=10.0.0.0/99",
    ],
)
def test_odd_windows_and_values_are_answered_not_500(site: Site, window: str) -> None:
    with signed_in_client(site, site.key_a) as client:
        for path in ("/console/search", "/console/histogram", "/console/export"):
            r = client.get(f"{path}?{window}")
            assert r.status_code in (200, 400), (path, r.status_code, r.text[:300])
