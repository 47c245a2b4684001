"""Insight values shared by the detector, the store and the doors: stored records and queries."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["INSIGHT_TYPES", "InsightAttr", "InsightCount", "InsightPosition", "InsightQuery", "StoredInsight"]

#: ActionTrail's seven Insights types, in the order its documentation lists them.
INSIGHT_TYPES: tuple[str, ...] = (
    "IpInsight",
    "ApiCallRateInsight",
    "ApiErrorRateInsight",
    "AkInsight",
    "PolicyChangeInsight",
    "PasswordChangeInsight",
    "TrailConcealmentInsight",
)


class InsightAttr(enum.StrEnum):
    """What LookupInsightEvents can filter on; each is a column of the stored insight."""

    INSIGHT_TYPE = "insight_type"
    EVENT_ID = "insight_id"
    SERVICE_NAME = "service_name"
    EVENT_NAME = "event_name"
    SOURCE_IP = "source_ip"
    ACCESS_KEY_ID = "access_key_id"
    INSIGHT_OBJECT = "insight_object"


@dataclass(frozen=True, slots=True)
class StoredInsight:
    """One insight record (a Start or an End) as the store keeps it: its filter columns and its JSON.

    ``insight_id`` is the record's eventId: derived from what raised it, so that two nodes (or one
    node replaying after a crash) raising the same insight store it once.
    """

    account_id: str
    insight_id: str
    shared_id: str
    insight_type: str
    state: str
    event_time_ms: int
    region: str
    insight_object: str
    body: bytes
    service_name: str = ""
    event_name: str = ""
    source_ip: str = ""
    access_key_id: str = ""


@dataclass(frozen=True, slots=True, order=True)
class InsightPosition:
    """Keyset position, newest first: event time, then the store's arrival number."""

    event_time_ms: int
    ref: int


@dataclass(frozen=True, slots=True)
class InsightQuery:
    start_ms: int
    end_ms: int
    equals: dict[InsightAttr, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InsightCount:
    insight_type: str
    region: str
    count: int
