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
from .operations import access_key_usage, insights, lookup_events, trail_extras, trail_status, trails

__all__ = ["OPERATIONS", "RAM_ACTIONS", "Operation", "compatibility_table"]

Handler = Callable[[Call, Services], dict[str, Any]]

THROTTLE_LOOKUP_EVENTS = "lookup_events"
THROTTLE_ACCESS_KEY_USAGE = "access_key_usage"
THROTTLE_TRAILS = "trails"
#: The Insights operations share the usage family's rate (TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE).
THROTTLE_INSIGHTS = "insights"


@dataclass(frozen=True, slots=True)
class Operation:
    action: str
    version: str
    handler: Handler
    throttle_group: str
    summary: str
    #: Answers from reads of the store alone, so it may be stopped part way and run again: the
    #: gateway may try it on the event loop first (``Gateway``, TRAILHOUSE_INLINE_READ_MS).
    read_only: bool = False

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
        read_only=True,
    ),
    ("LookupEvents", "2020-07-06"): Operation(
        "LookupEvents",
        "2020-07-06",
        lookup_events.lookup_events_2020,
        THROTTLE_LOOKUP_EVENTS,
        "Search events with up to two LookupAttribute filters; Direction; 90-day span.",
        read_only=True,
    ),
    ("GetAccessKeyLastUsedIps", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedIps",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_ips,
        THROTTLE_ACCESS_KEY_USAGE,
        "IPs that used an AccessKey on a service, most recent first.",
        read_only=True,
    ),
    ("GetAccessKeyLastUsedEvents", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedEvents",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_events,
        THROTTLE_ACCESS_KEY_USAGE,
        "Event names an AccessKey called on a service, most recent first.",
        read_only=True,
    ),
    ("GetAccessKeyLastUsedResources", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedResources",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_resources,
        THROTTLE_ACCESS_KEY_USAGE,
        "Resources an AccessKey touched on a service, most recent first.",
        read_only=True,
    ),
    ("GetAccessKeyLastUsedProducts", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedProducts",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_products,
        THROTTLE_ACCESS_KEY_USAGE,
        "Services an AccessKey called, most recent first.",
        read_only=True,
    ),
    ("GetAccessKeyLastUsedInfo", "2020-07-06"): Operation(
        "GetAccessKeyLastUsedInfo",
        "2020-07-06",
        access_key_usage.get_access_key_last_used_info,
        THROTTLE_ACCESS_KEY_USAGE,
        "The owner of an AccessKey and its most recent use.",
        read_only=True,
    ),
    ("CreateTrail", "2017-12-04"): Operation(
        "CreateTrail",
        "2017-12-04",
        trails.create_trail,
        THROTTLE_TRAILS,
        "Create a trail (Status Fresh until StartLogging); OSS bucket and/or SLS project; 5 per region.",
    ),
    ("CreateTrail", "2020-07-06"): Operation(
        "CreateTrail",
        "2020-07-06",
        trails.create_trail,
        THROTTLE_TRAILS,
        "Create a trail (Status Fresh until StartLogging); OSS bucket and/or SLS project; 5 per region.",
    ),
    ("UpdateTrail", "2017-12-04"): Operation(
        "UpdateTrail",
        "2017-12-04",
        trails.update_trail,
        THROTTLE_TRAILS,
        "Change a trail's destinations, EventRW and TrailRegion.",
    ),
    ("UpdateTrail", "2020-07-06"): Operation(
        "UpdateTrail",
        "2020-07-06",
        trails.update_trail,
        THROTTLE_TRAILS,
        "Change a trail's destinations, EventRW and TrailRegion.",
    ),
    ("DeleteTrail", "2017-12-04"): Operation(
        "DeleteTrail",
        "2017-12-04",
        trails.delete_trail,
        THROTTLE_TRAILS,
        "Delete a trail and its data event selector.",
    ),
    ("DeleteTrail", "2020-07-06"): Operation(
        "DeleteTrail",
        "2020-07-06",
        trails.delete_trail,
        THROTTLE_TRAILS,
        "Delete a trail and its data event selector.",
    ),
    ("DescribeTrails", "2017-12-04"): Operation(
        "DescribeTrails",
        "2017-12-04",
        trails.describe_trails,
        THROTTLE_TRAILS,
        "The account's trails (NameList), shadow and organization trails on request.",
    ),
    ("DescribeTrails", "2020-07-06"): Operation(
        "DescribeTrails",
        "2020-07-06",
        trails.describe_trails,
        THROTTLE_TRAILS,
        "The account's trails (NameList), shadow and organization trails on request.",
    ),
    ("StartLogging", "2017-12-04"): Operation(
        "StartLogging",
        "2017-12-04",
        trails.start_logging,
        THROTTLE_TRAILS,
        "Status Fresh/Disable -> Enable: the trail delivers.",
    ),
    ("StartLogging", "2020-07-06"): Operation(
        "StartLogging",
        "2020-07-06",
        trails.start_logging,
        THROTTLE_TRAILS,
        "Status Fresh/Disable -> Enable: the trail delivers.",
    ),
    ("StopLogging", "2017-12-04"): Operation(
        "StopLogging",
        "2017-12-04",
        trails.stop_logging,
        THROTTLE_TRAILS,
        "Status Enable -> Disable: the trail stops delivering.",
    ),
    ("StopLogging", "2020-07-06"): Operation(
        "StopLogging",
        "2020-07-06",
        trails.stop_logging,
        THROTTLE_TRAILS,
        "Status Enable -> Disable: the trail stops delivering.",
    ),
    ("DescribeRegions", "2017-12-04"): Operation(
        "DescribeRegions",
        "2017-12-04",
        trails.describe_regions,
        THROTTLE_TRAILS,
        "The regions TrailRegion may name (2020: LocalName, RegionEndpoint).",
    ),
    ("DescribeRegions", "2020-07-06"): Operation(
        "DescribeRegions",
        "2020-07-06",
        trails.describe_regions,
        THROTTLE_TRAILS,
        "The regions TrailRegion may name (2020: LocalName, RegionEndpoint).",
    ),
    ("CreateDeliveryHistoryJob", "2020-07-06"): Operation(
        "CreateDeliveryHistoryJob",
        "2020-07-06",
        trail_extras.create_delivery_history_job,
        THROTTLE_TRAILS,
        "Record a job replaying a trail's last 90 days into it; one running per account.",
    ),
    ("GetDeliveryHistoryJob", "2020-07-06"): Operation(
        "GetDeliveryHistoryJob",
        "2020-07-06",
        trail_extras.get_delivery_history_job,
        THROTTLE_TRAILS,
        "A delivery-history job's window and status (0-3).",
    ),
    ("ListDeliveryHistoryJobs", "2020-07-06"): Operation(
        "ListDeliveryHistoryJobs",
        "2020-07-06",
        trail_extras.list_delivery_history_jobs,
        THROTTLE_TRAILS,
        "The account's delivery-history jobs, newest first, by page.",
    ),
    ("DeleteDeliveryHistoryJob", "2020-07-06"): Operation(
        "DeleteDeliveryHistoryJob",
        "2020-07-06",
        trail_extras.delete_delivery_history_job,
        THROTTLE_TRAILS,
        "Delete a delivery-history job (a running one stops).",
    ),
    ("PutDataEventSelector", "2020-07-06"): Operation(
        "PutDataEventSelector",
        "2020-07-06",
        trail_extras.put_data_event_selector,
        THROTTLE_TRAILS,
        "Choose the data events (OSS) a trail delivers.",
    ),
    ("GetDataEventSelector", "2020-07-06"): Operation(
        "GetDataEventSelector",
        "2020-07-06",
        trail_extras.get_data_event_selector,
        THROTTLE_TRAILS,
        "A trail's data event selector.",
    ),
    ("ListDataEventSelectors", "2020-07-06"): Operation(
        "ListDataEventSelectors",
        "2020-07-06",
        trail_extras.list_data_event_selectors,
        THROTTLE_TRAILS,
        "The account's data event selectors, by page.",
    ),
    ("DeleteDataEventSelector", "2020-07-06"): Operation(
        "DeleteDataEventSelector",
        "2020-07-06",
        trail_extras.delete_data_event_selector,
        THROTTLE_TRAILS,
        "Remove a trail's data event selector.",
    ),
    ("ListDataEventServices", "2020-07-06"): Operation(
        "ListDataEventServices",
        "2020-07-06",
        trail_extras.list_data_event_services,
        THROTTLE_TRAILS,
        "The services with data events and their event names.",
    ),
    ("GetGlobalEventsStorageRegion", "2020-07-06"): Operation(
        "GetGlobalEventsStorageRegion",
        "2020-07-06",
        trail_extras.get_global_events_storage_region,
        THROTTLE_TRAILS,
        "Where the account's global events are kept.",
    ),
    ("UpdateGlobalEventsStorageRegion", "2020-07-06"): Operation(
        "UpdateGlobalEventsStorageRegion",
        "2020-07-06",
        trail_extras.update_global_events_storage_region,
        THROTTLE_TRAILS,
        "Keep global events in cn-hangzhou or ap-southeast-1.",
    ),
    ("GetTrailStatus", "2017-12-04"): Operation(
        "GetTrailStatus",
        "2017-12-04",
        trail_status.get_trail_status_2017,
        THROTTLE_TRAILS,
        "Whether a trail logs; its last OSS delivery and error (from the delivery checkpoints).",
    ),
    ("GetTrailStatus", "2020-07-06"): Operation(
        "GetTrailStatus",
        "2020-07-06",
        trail_status.get_trail_status_2020,
        THROTTLE_TRAILS,
        "Whether a trail logs; last delivery and error for OSS and the stream; bucket and stream health.",
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
