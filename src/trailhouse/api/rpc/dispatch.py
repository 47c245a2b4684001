"""The operation table: every (Action, Version) the gateway serves, as a literal dict.

Nothing is looked up by a request-controlled name: an action/version pair that is not a key of
``OPERATIONS`` is answered with InvalidAction.NotFound or InvalidVersion. docs/compatibility.md
holds a table generated from this one (``python -m trailhouse.api.rpc.dispatch``); a test fails when
the two differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..context import Services
from .call import Call
from .operations import access_key_usage, insights, lookup_events

__all__ = ["OPERATIONS", "RAM_ACTIONS", "Operation", "compatibility_table"]

Handler = Callable[[Call, Services], dict[str, Any]]

THROTTLE_LOOKUP_EVENTS = "lookup_events"
THROTTLE_ACCESS_KEY_USAGE = "access_key_usage"
#: The Insights operations share the usage family's rate (TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE).
THROTTLE_INSIGHTS = "insights"


@dataclass(frozen=True, slots=True)
class Operation:
    action: str
    version: str
    handler: Handler
    throttle_group: str
    summary: str

    @property
    def ram_action(self) -> str:
        return f"actiontrail:{self.action}"


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("LookupEvents", "2017-12-04"): Operation(
        "LookupEvents",
        "2017-12-04",
        lookup_events.lookup_events_2017,
        THROTTLE_LOOKUP_EVENTS,
        "Search events with the eight dedicated filters; 30-day span.",
    ),
    ("LookupEvents", "2020-07-06"): Operation(
        "LookupEvents",
        "2020-07-06",
        lookup_events.lookup_events_2020,
        THROTTLE_LOOKUP_EVENTS,
        "Search events with up to two LookupAttribute filters; Direction; 90-day span.",
    ),
    ("GetAccessKeyLastUsedIps", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedIps",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_ips,
        THROTTLE_ACCESS_KEY_USAGE,
        "IPs that used an AccessKey on a service, most recent first.",
    ),
    ("GetAccessKeyLastUsedEvents", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedEvents",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_events,
        THROTTLE_ACCESS_KEY_USAGE,
        "Event names an AccessKey called on a service, most recent first.",
    ),
    ("GetAccessKeyLastUsedResources", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedResources",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_resources,
        THROTTLE_ACCESS_KEY_USAGE,
        "Resources an AccessKey touched on a service, most recent first.",
    ),
    ("GetAccessKeyLastUsedProducts", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedProducts",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_products,
        THROTTLE_ACCESS_KEY_USAGE,
        "Services an AccessKey called, most recent first.",
    ),
    ("GetAccessKeyLastUsedInfo", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedInfo",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_info,
        THROTTLE_ACCESS_KEY_USAGE,
        "The owner of an AccessKey and its most recent use.",
    ),
    ("EnableInsight", "2020-07-06"): Operation(
        "EnableInsight",
        "2020-07-06",
        insights.enable_insight,
        THROTTLE_INSIGHTS,
        "Turn an Insights type on for the account.",
    ),
    ("DisableInsight", "2020-07-06"): Operation(
        "DisableInsight",
        "2020-07-06",
        insights.disable_insight,
        THROTTLE_INSIGHTS,
        "Turn an Insights type off for the account.",
    ),
    ("GetInsightTypes", "2020-07-06"): Operation(
        "GetInsightTypes",
        "2020-07-06",
        insights.get_insight_types,
        THROTTLE_INSIGHTS,
        "The Insights types offered, each with whether the account enabled it.",
    ),
    ("PutInsightSelectors", "2020-07-06"): Operation(
        "PutInsightSelectors",
        "2020-07-06",
        insights.put_insight_selectors,
        THROTTLE_INSIGHTS,
        "Choose the Insights types a trail records.",
    ),
    ("GetInsightSelectors", "2020-07-06"): Operation(
        "GetInsightSelectors",
        "2020-07-06",
        insights.get_insight_selectors,
        THROTTLE_INSIGHTS,
        "The Insights types a trail records.",
    ),
    ("GetInsightsEventsCount", "2020-07-06"): Operation(
        "GetInsightsEventsCount",
        "2020-07-06",
        insights.get_insights_events_count,
        THROTTLE_INSIGHTS,
        "Insights per type and region in a window (or one Date).",
    ),
    ("LookupInsightEvents", "2020-07-06"): Operation(
        "LookupInsightEvents",
        "2020-07-06",
        insights.lookup_insight_events,
        THROTTLE_INSIGHTS,
        "Search insight records with up to two LookupAttribute filters; 93-day span.",
    ),
}

KNOWN_VERSIONS = frozenset(version for _, version in OPERATIONS)
#: What a key may be limited to: each served action's RAM-style name, or all of them.
RAM_ACTIONS = (*sorted({op.ram_action for op in OPERATIONS.values()}), "actiontrail:*")


def compatibility_table() -> str:
    """The Markdown table of supported operations that docs/compatibility.md embeds."""
    lines = ["| Action | Version | Throttle group | What it does |", "|---|---|---|---|"]
    for (action, version), op in sorted(OPERATIONS.items()):
        lines.append(f"| {action} | {version} | {op.throttle_group} | {op.summary} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(compatibility_table(), end="")
