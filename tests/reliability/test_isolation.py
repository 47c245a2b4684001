"""Tenant isolation (issue 17): with account A's credentials, no read path shows anything of account B.

A and B hold events that share as much as they can — the same eventIds and requestIds, user and
role names, event names, a shared AccessKey id in userIdentity — and B's carry values A's never do
(markers): B's account id, IPs in 198.51.100.0/24, resources ``b-res-*``, the event name and user
agent ``BOnly*``, and the service Oss. Every answer A gets is searched for those markers:

* RPC LookupEvents 2017-12-04 (every dedicated filter) and 2020-07-06 (all twelve LookupAttribute
  keys), with values that match B's events, following NextToken;
* the five GetAccessKeyLastUsed* for B's own key and for the shared key;
* NextTokens (and a native cursor) that B obtained, replayed by A: an error or nothing of B;
* the native search (every filter), its NDJSON and CSV exports, the summary (counts) and the
  access-key report (JSON and HTML); ``account=B`` with A's token is refused; B's key in A's report
  is 404 AccessKeyNotFound.

A's own data is checked to come back too, so that a path answering nothing at all does not pass as
isolated.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.reliability._harness import (
    V2017,
    V2020,
    Creds,
    ServeProcess,
    event,
    lookup_2020,
    make_creds,
    serving,
    signed_get,
)
from tests.reliability._report import FULL, size
from tests.reliability.conftest import backend_of
from trailhouse.model.times import now_ms

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600 if FULL else 120)]

SHARED_KEY = "LTAI5tSharedIsolation000"
B_MARKERS = ("198.51.100.", "b-res-", "BOnly")
PAGES = 5


def _events(creds: Creds, own_only: str, ip_prefix: str, res_prefix: str, count: int) -> list[dict[str, Any]]:
    now = now_ms()
    out = []
    for n in range(count):
        role = n % 4 == 0
        ev = event(
            creds.account_id,
            f"iso-{n}",  # the same eventIds in both accounts
            now - (n + 1) * 60_000,
            requestId=f"REQ-ISO-{n:06d}",
            eventName=("DescribeInstances", "CreateUser", own_only + "Action")[n % 3],
            eventRW=("Read", "Write")[n % 2],
            serviceName="Oss" if own_only == "BOnly" and n % 5 == 0 else ("Ecs", "Ram")[n % 2],
            sourceIpAddress=f"{ip_prefix}{n % 250 + 1}",
            resourceType="ACS::ECS::Instance",
            resourceName=f"{res_prefix}{n}",
            sensitiveAction=n % 3 == 1,
            userAgent=f"{own_only}-agent",
        )
        ev["userIdentity"].update(
            {
                "type": "assumed-role" if role else "ram-user",
                "userName": "SharedRole:session" if role else "alice",
                "accessKeyId": creds.key_id if n % 2 == 0 else SHARED_KEY,
            }
        )
        out.append(ev)
    return out


class Checker:
    """Sends A's requests and keeps every answer that shows something of B (or a 5xx)."""

    def __init__(self, server: ServeProcess, a: Creds, b: Creds) -> None:
        self.server = server
        self.a, self.b = a, b
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.checks = 0
        self.problems: list[str] = []
        self.a_seen = 0  # answers that did show A's own events

    def close(self) -> None:
        self.http.close()

    def markers(self, text: str, *, key_named: bool = False, account_named: bool = False) -> list[str]:
        """B's markers in ``text``; B's key id or account id do not count where A's request named
        them (an answer may echo what it was asked)."""
        found = [m for m in B_MARKERS if m in text]
        if not account_named and self.b.account_id in text:
            found.append(self.b.account_id)
        if not key_named and self.b.key_id in text:
            found.append(self.b.key_id)
        return found

    def judge(
        self, what: str, r: httpx.Response, *, key_named: bool = False, account_named: bool = False
    ) -> Any:
        self.checks += 1
        text = r.text
        leaked = self.markers(text, key_named=key_named, account_named=account_named)
        if r.status_code >= 500:
            self.problems.append(f"{what}: {r.status_code} {text[:200]}")
        if leaked:
            self.problems.append(f"{what}: shows B ({', '.join(leaked)}): {text[:300]}")
        if self.a.account_id in text and "iso-" in text:
            self.a_seen += 1
        try:
            return r.json()
        except ValueError:
            return None

    def rpc(
        self, what: str, creds: Creds, action: str, version: str, *, key_named: bool = False, **params: str
    ) -> Any:
        r = self.http.get(signed_get(creds, action, version, **params))
        if creds is self.b:  # B's own request: only needed for its NextToken
            assert r.status_code == 200, r.text[:300]
            return r.json()
        return self.judge(what, r, key_named=key_named)

    def rpc_pages(self, what: str, version: str, **params: str) -> None:
        token = None
        for page in range(PAGES):
            extra = {"NextToken": token} if token else {}
            doc = self.rpc(
                f"{what} page {page + 1}", self.a, "LookupEvents", version, MaxResults="50", **params, **extra
            )
            token = (doc or {}).get("NextToken")
            if not token:
                return

    def native(self, what: str, path: str, creds: Creds | None = None, **params: str) -> httpx.Response:
        r = self.http.get(path, params=params, headers=(creds or self.a).bearer)
        if creds is None or creds is self.a:
            self.judge(
                what,
                r,
                key_named=self.b.key_id in path or self.b.key_id in str(params),
                account_named=params.get("account") == self.b.account_id,
            )
        return r


FILTERS_2017 = {
    "Event": "iso-3",
    "Request": "REQ-ISO-000003",
    "EventType": "ApiCall",
    "ServiceName": "Oss",
    "EventName": "BOnlyAction",
    "User": "alice",
    "ResourceType": "ACS::ECS::Instance",
    "ResourceName": "b-res-2",
    "EventRW": "Write",
    "EventAccessKeyId": SHARED_KEY,
}
FILTERS_2020 = {
    "ServiceName": "Oss",
    "EventName": "BOnlyAction",
    "User": "alice",
    "EventId": "iso-3",
    "ResourceType": "ACS::ECS::Instance",
    "ResourceName": "b-res-2",
    "EventRW": "Write",
    "EventAccessKeyId": SHARED_KEY,
    "SensitiveAction": "true",
    "SourceIpAddress": "198.51.100.0/24",
    "EventType": "ApiCall",
    "RoleName": "SharedRole",
}
NATIVE_FILTERS = {
    "EventId": "iso-3",
    "RequestId": "REQ-ISO-000003",
    "EventName": "BOnlyAction",
    "EventType": "ApiCall",
    "EventRW": "Write",
    "ServiceName": "Oss",
    "User": "alice",
    "EventAccessKeyId": SHARED_KEY,
    "SourceIpAddress": "198.51.100.0/24",
    "RoleName": "SharedRole",
    "SensitiveAction": "true",
    "ResourceName.prefix": "b-res-",
}


def _run_checks(c: Checker, a: Creds, b: Creds) -> None:
    # RPC LookupEvents, both versions, unfiltered and with each filter.
    for version in (V2017, V2020):
        c.rpc_pages(f"LookupEvents {version}", version)
    for name, value in FILTERS_2017.items():
        c.rpc_pages(f"LookupEvents 2017 {name}={value}", V2017, **{name: value})
    for name, value in FILTERS_2020.items():
        c.rpc_pages(f"LookupEvents 2020 {name}={value}", V2020, **lookup_2020(a, **{name: value}))
    c.rpc_pages(
        "LookupEvents 2020 EventAccessKeyId=<B's key>", V2020, **lookup_2020(a, EventAccessKeyId=b.key_id)
    )

    # The GetAccessKeyLastUsed* family, for B's own key and the key both accounts used.
    for key in (b.key_id, SHARED_KEY):
        named = key == b.key_id
        for action in (
            "GetAccessKeyLastUsedIps",
            "GetAccessKeyLastUsedEvents",
            "GetAccessKeyLastUsedResources",
        ):
            for service in ("Ecs", "Ram", "Oss"):
                c.rpc(
                    f"{action} {key} {service}",
                    a,
                    action,
                    V2020,
                    key_named=named,
                    AccessKey=key,
                    ServiceName=service,
                )
        products = c.rpc(
            f"GetAccessKeyLastUsedProducts {key}",
            a,
            "GetAccessKeyLastUsedProducts",
            V2020,
            key_named=named,
            AccessKey=key,
        )
        services = [p.get("ServiceName") for p in (products or {}).get("Products", [])]
        if "Oss" in services:
            c.problems.append(f"GetAccessKeyLastUsedProducts {key}: lists Oss, which only B used: {services}")
        info = c.rpc(
            f"GetAccessKeyLastUsedInfo {key}",
            a,
            "GetAccessKeyLastUsedInfo",
            V2020,
            key_named=named,
            AccessKey=key,
        )
        if named and info and ({"UsedTimestamp", "AccountId", "UserName"} & set(info)):
            c.problems.append(f"GetAccessKeyLastUsedInfo for B's key tells A of a use: {info}")

    # NextTokens and cursors B obtained, replayed by A.
    doc = c.rpc("", b, "LookupEvents", V2020, MaxResults="1")
    if not c.markers(orjson.dumps(doc).decode()):  # the markers do show where B's events are
        c.problems.append(f"B's own LookupEvents shows none of B's markers: {doc}")
    c.rpc(
        "B's LookupEvents 2020 NextToken",
        a,
        "LookupEvents",
        V2020,
        MaxResults="1",
        NextToken=doc["NextToken"],
    )
    doc = c.rpc("", b, "LookupEvents", V2017, MaxResults="1")
    c.rpc(
        "B's LookupEvents 2017 NextToken",
        a,
        "LookupEvents",
        V2017,
        MaxResults="1",
        NextToken=doc["NextToken"],
    )
    doc = c.rpc(
        "", b, "GetAccessKeyLastUsedEvents", V2020, AccessKey=SHARED_KEY, ServiceName="Ram", PageSize="1"
    )
    if doc.get("NextToken"):
        c.rpc(
            "B's GetAccessKeyLastUsedEvents NextToken",
            a,
            "GetAccessKeyLastUsedEvents",
            V2020,
            AccessKey=SHARED_KEY,
            ServiceName="Ram",
            PageSize="1",
            NextToken=doc["NextToken"],
        )
    else:
        c.problems.append(f"B's GetAccessKeyLastUsedEvents gave no NextToken to replay: {doc}")
    b_page = c.native("", "/api/v1/events", creds=b, limit="1").json()
    c.native("B's native cursor", "/api/v1/events", limit="1", cursor=b_page["nextCursor"])

    # The native API: search with each filter, exports, summary, report.
    c.native("native search", "/api/v1/events", limit="1000")
    for name, value in NATIVE_FILTERS.items():
        c.native(f"native search {name}={value}", "/api/v1/events", **{name: value})
    for fmt in ("ndjson", "csv"):
        c.native(f"native export {fmt}", "/api/v1/events", format=fmt)
        c.native(f"native export {fmt} ServiceName=Oss", "/api/v1/events", format=fmt, ServiceName="Oss")
    summary = c.native("native summary", "/api/v1/summary").json()
    if (summary.get("stored") or {}).get("count") != size(40, 400):
        c.problems.append(f"native summary counts {summary.get('stored')} events, A holds {size(40, 400)}")
    for path in ("/api/v1/events", "/api/v1/summary", f"/api/v1/access-keys/{SHARED_KEY}/report"):
        r = c.native(f"{path}?account=<B>", path, account=b.account_id)
        if r.status_code not in (400, 403, 404):
            c.problems.append(f"{path}?account=<B> with A's token: {r.status_code}, wanted a refusal")
    r = c.native("report of B's key", f"/api/v1/access-keys/{urllib.parse.quote(b.key_id)}/report")
    if r.status_code != 404 or (r.json().get("error") or {}).get("code") != "AccessKeyNotFound":
        c.problems.append(
            f"report of B's key in A's account: {r.status_code} {r.text[:200]}, wanted 404 AccessKeyNotFound"
        )
    for fmt in ("json", "html"):
        r = c.native(
            f"report of the shared key ({fmt})", f"/api/v1/access-keys/{SHARED_KEY}/report", format=fmt
        )
        if r.status_code != 200:
            c.problems.append(f"report of the shared key ({fmt}): {r.status_code} {r.text[:200]}")
        elif fmt == "html" and "Oss" in r.text:
            c.problems.append("report of the shared key (html) names Oss, which only B used")


def test_account_a_sees_nothing_of_account_b(
    db_url: str, data_dir: Path, master_key: str, report: Any
) -> None:
    backend = backend_of(db_url)
    a = make_creds(db_url, master_key)
    b = make_creds(db_url, master_key)
    count = size(40, 400)
    with serving(
        db_url,
        data_dir,
        master_key,
        TRAILHOUSE_THROTTLE_LOOKUP_EVENTS=0,
        TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE=0,
    ) as server:
        for creds, marker, ip, res in (
            (a, "AOnly", "192.0.2.", "a-res-"),
            (b, "BOnly", "198.51.100.", "b-res-"),
        ):
            body = orjson.dumps(_events(creds, marker, ip, res, count))
            r = httpx.post(f"{server.url}/api/v1/events", content=body, headers=creds.bearer, timeout=120)
            assert r.status_code == 200 and r.json()["accepted"] == count, r.text[:300]
        checker = Checker(server, a, b)
        try:
            _run_checks(checker, a, b)
        finally:
            checker.close()
        alive = server.alive()
        log = server.log_tail()
    ok = not checker.problems and checker.a_seen > 0 and alive
    report(
        "tenant isolation",
        backend,
        f"{checker.checks} reads with account A's credentials (RPC LookupEvents 2017 and 2020 with every "
        f"filter, GetAccessKeyLastUsed* x5, B's NextTokens and cursor, native search/export/summary/report): "
        f"{len(checker.problems)} showed anything of B or failed; A's own events seen in {checker.a_seen}",
        ok=ok,
        checks=checker.checks,
        leaks=len(checker.problems),
        problems=checker.problems[:20],
    )
    assert alive, log
    assert checker.a_seen > 0, "no answer showed A's own events: the checks prove nothing"
    assert not checker.problems, "\n".join(checker.problems[:30]) + "\n" + log
