"""Which events of the log a trail delivers: its accounts, EventRW, TrailRegion, data events.

An account trail delivers its own account's events; an organization trail every account of the
organization its account manages. Management events are filtered by EventRW and the trail's
regions (the event's ``acsRegion``); data events (``eventCategory: Data``) only where the trail's
data event selector names their service and region.

Insight records (docs/insights.md, "In a trail's files"): only an account trail delivers them, as
ActionTrail's multi-account trails cannot; the types its insight selectors name
(PutInsightSelectors), in the regions the trail covers (the record's ``acsRegion``).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..model.insights import StoredInsight
from ..model.trail import DataEventSelector, Trail
from ..service.trail_extras import selector_covers
from ..storage.base import LogEntry

__all__ = ["EventFacts", "TrailScope", "event_facts"]


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What scope and file layout need of an event, read once from its stored text."""

    acs_region: str
    event_rw: str
    category: str
    service_name: str


def event_facts(body: bytes) -> EventFacts:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}

    def text(name: str) -> str:
        value = doc.get(name)
        return value if isinstance(value, str) else ""

    return EventFacts(text("acsRegion"), text("eventRW"), text("eventCategory"), text("serviceName"))


@dataclass(frozen=True, slots=True)
class TrailScope:
    """A trail's filter, built once per refresh of the trail list."""

    trail: Trail
    accounts: frozenset[str]
    selector: DataEventSelector | None = None
    #: The Insights types the trail's selectors name (empty: the trail delivers no insights).
    insight_types: frozenset[str] = frozenset()

    @property
    def delivers_insights(self) -> bool:
        return bool(self.insight_types) and not self.trail.is_organization_trail

    def covers_insight(self, insight: StoredInsight) -> bool:
        """Whether the trail delivers this insight record (a Start or an End)."""
        regions = self.trail.regions
        return (
            self.delivers_insights
            and insight.account_id == self.trail.account_id
            and insight.insight_type in self.insight_types
            and (regions is None or insight.region in regions)
        )

    def covers(self, entry: LogEntry) -> EventFacts | None:
        """The event's facts when the trail delivers it, else None."""
        if entry.account_id not in self.accounts:
            return None
        facts = event_facts(entry.event.body)
        if facts.category == "Data":
            sel = self.selector
            if sel is None or not selector_covers(
                sel, service_name=facts.service_name, acs_region=facts.acs_region
            ):
                return None
            return facts
        if not self.trail.covers(acs_region=facts.acs_region, event_rw=facts.event_rw):
            return None
        return facts
