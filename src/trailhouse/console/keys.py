"""The AccessKey investigation page: the key's usage and the leaked-key report.

Usage is what the GetAccessKeyLastUsed* family answers (``service/access_keys.py``), each part
shown only when the signed-in key may call that operation. The report is
``service.access_key_report.build_report`` from a suspected-leak time chosen on the page; the
page reads only the report's public fields (``render/`` has its own HTML for the CLI and API).
Above them, the newest insights that name the key (``actiontrail:LookupInsightEvents``).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..model.query import UsageKind
from ..model.times import DAY_MS, TimeFormatError, format_wire_time, now_ms, parse_event_time
from ..service.access_key_report import build_report
from ..service.access_keys import all_usage, last_used_info, last_used_products, window_start
from ..service.insights.browse import insights_status, offered_types
from .insights import KEY_PAGE_SHOWN, LOOKUP, TYPES, InsightsState, insight_rows
from .web import PREFIX, Console, PageError

__all__ = ["access_key_page"]

FAMILY = (
    "GetAccessKeyLastUsedInfo",
    "GetAccessKeyLastUsedProducts",
    "GetAccessKeyLastUsedIps",
    "GetAccessKeyLastUsedEvents",
    "GetAccessKeyLastUsedResources",
)
USAGE_LISTS = (
    ("GetAccessKeyLastUsedIps", UsageKind.IP, "IP addresses"),
    ("GetAccessKeyLastUsedEvents", UsageKind.EVENT, "Event names"),
    ("GetAccessKeyLastUsedResources", UsageKind.RESOURCE, "Resources"),
)
#: Rows per usage list on the page (the API pages through all of them).
SHOWN = 200
DEFAULT_SINCE_DAYS = 7


def _since(text: str | None, now: int) -> int:
    if not text or not text.strip():
        return now - DEFAULT_SINCE_DAYS * DAY_MS
    value = text.strip()
    try:
        return parse_event_time(value if value.endswith("Z") or "+" in value[10:] else value + "Z")
    except (TimeFormatError, ValueError, OverflowError):
        raise PageError(
            400, "Cannot report", f"since: {value!r} is not a time (use 2026-12-06T10:00:00Z)"
        ) from None


async def access_key_page(console: Console, request: Request) -> Response:
    who = await console.signed_in(request, "LookupEvents", *FAMILY)
    key_id = request.path_params.get("access_key_id") or request.query_params.get("key", "").strip()
    if not request.path_params.get("access_key_id"):
        if key_id:
            target = f"{PREFIX}/access-key/{urllib.parse.quote(key_id, safe='')}"
            return RedirectResponse(target, status_code=303)
        return console.page(request, "access_key_pick.html", who=who, nav="keys", title="AccessKey")
    if "\x00" in key_id or len(key_id) > 256:
        raise PageError(400, "Cannot report", "That is not an AccessKey ID.")
    store, settings = console.svc.store, console.svc.settings
    now = now_ms()
    since = _since(request.query_params.get("since"), now)
    if since >= now:
        raise PageError(400, "Cannot report", "The suspected-leak time must be in the past.")
    account = who.account_id
    window_days = settings.usage_window_days

    def usage() -> dict[str, Any]:
        out: dict[str, Any] = {"info": None, "products": None, "lists": []}
        if who.allows("GetAccessKeyLastUsedInfo"):
            out["info"] = last_used_info(
                store, account_id=account, access_key_id=key_id, now_ms=now, window_days=window_days
            )
        if who.allows("GetAccessKeyLastUsedProducts"):
            out["products"] = last_used_products(
                store, account_id=account, access_key_id=key_id, now_ms=now, window_days=window_days
            )
        for action, kind, heading in USAGE_LISTS:
            if who.allows(action):
                rows = all_usage(
                    store,
                    account_id=account,
                    access_key_id=key_id,
                    kind=kind,
                    since_ms=window_start(now, window_days),
                )
                out["lists"].append((heading, kind.name, rows[:SHOWN], len(rows)))
        return out

    parts = await console.bounded(request, usage)
    report = None
    if who.allows("LookupEvents") and who.allows("GetAccessKeyLastUsedIps"):
        report = await console.bounded(
            request,
            lambda: build_report(store, account_id=account, access_key_id=key_id, since_ms=since, now_ms=now),
        )

    key_insights = None
    more_insights = False
    insights_enabled = None
    if who.allows(LOOKUP):

        def insights() -> tuple[list[Any], bool, bool | None]:
            rows, more = insight_rows(console, who, key=key_id, limit=KEY_PAGE_SHOWN)
            enabled = None
            if who.allows(TYPES):
                offered = offered_types(settings.insight_types)
                enabled = bool(insights_status(store, account_id=account, offered=offered).enabled)
            return rows, more, enabled

        key_insights, more_insights, insights_enabled = await console.bounded(request, insights)
    insights_window = InsightsState(now - settings.retention_days * DAY_MS, now + DAY_MS, key=key_id)

    def search(**extra: str) -> str:
        pairs = [
            ("start", format_wire_time(max(since, now - settings.retention_days * DAY_MS))),
            ("end", format_wire_time(now)),
            ("EventAccessKeyId", key_id),
            *extra.items(),
        ]
        return f"{PREFIX}/search?{urllib.parse.urlencode(pairs)}"

    return console.page(
        request,
        "access_key.html",
        who=who,
        nav="keys",
        title=f"AccessKey {key_id}",
        key_id=key_id,
        since=format_wire_time(since),
        usage=parts,
        report=report,
        report_allowed=report is not None,
        search=search,
        key_insights=key_insights,
        more_insights=more_insights,
        insights_enabled=insights_enabled,
        insights_url=f"{PREFIX}/insights?{insights_window.query()}",
    )
