"""The insight record (beyond-the-seeds §2.5) and the parsed view of an event the rules read.

Ids are derived, not random: the same insight raised twice (two nodes, or a replay after a crash)
gets the same eventId, and the store keeps it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ...model.event import id_text
from ...model.event_text import parse_body
from ...model.insights import StoredInsight
from ...model.times import format_wire_time
from ...storage.base import LogEntry

__all__ = ["Attribution", "Seen", "Statistics", "insight_pair", "insight_record", "seen"]

_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-4f7b-9a51-2b7c8e0d4a91")


@dataclass(frozen=True, slots=True)
class Seen:
    """What the rules read of one logged event."""

    seq: int
    account_id: str
    event_id: str
    time_ms: int
    name: str
    service: str
    rw: str
    error_code: str
    ip: str
    access_key_id: str
    user_name: str
    identity_type: str
    region: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """Who acted: the AccessKey (not an STS token), else the user name, else ''."""
        if self.access_key_id and not self.access_key_id.startswith("STS."):
            return self.access_key_id
        return self.user_name


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _Identity(msgspec.Struct):
    accessKeyId: str = ""  # noqa: N815 (the event's field names)
    userName: str = ""  # noqa: N815
    type: str = ""


class _Read(msgspec.Struct):
    """The fields the rules read, decoded in C; the rest of the body is skipped, not built."""

    eventId: str | int = ""  # noqa: N815 (the event's field names); an integer's text is its id
    eventName: str = ""  # noqa: N815
    serviceName: str = ""  # noqa: N815
    eventRW: str = ""  # noqa: N815
    errorCode: str = ""  # noqa: N815
    sourceIpAddress: str = ""  # noqa: N815
    acsRegion: str = ""  # noqa: N815
    userIdentity: _Identity = msgspec.field(default_factory=_Identity)  # noqa: N815
    requestParameters: msgspec.Raw = msgspec.Raw()  # noqa: N815


_READ = msgspec.json.Decoder(_Read)


def seen(entry: LogEntry, params_of: Collection[str] | None = None) -> Seen:
    """The rules' view of a logged event. ``params_of``: the event names whose requestParameters
    a rule reads (the change rules'); other events skip decoding them. None: every event's."""
    try:
        read = _READ.decode(entry.event.body)
    except msgspec.DecodeError:  # a field of another JSON type than the rules expect, or null
        return _seen_loosely(entry)
    params: Any = {}
    if read.requestParameters and (params_of is None or read.eventName in params_of):
        params = parse_body(bytes(read.requestParameters))
    identity = read.userIdentity
    return Seen(
        seq=entry.seq,
        account_id=entry.account_id,
        event_id=id_text(read.eventId),  # as ingest indexed it (event_id_of), read in the same decode
        time_ms=entry.event.event_time_ms,
        name=read.eventName,
        service=read.serviceName,
        rw=read.eventRW,
        error_code=read.errorCode,
        ip=read.sourceIpAddress,
        access_key_id=identity.accessKeyId,
        user_name=identity.userName,
        identity_type=identity.type,
        region=read.acsRegion or "cn-hangzhou",
        params=params if isinstance(params, dict) else {},
    )


def _seen_loosely(entry: LogEntry) -> Seen:
    """The same view, field by field: a value of an unexpected type reads as ''."""
    body = parse_body(entry.event.body)
    body = body if isinstance(body, dict) else {}
    identity = body.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    params = body.get("requestParameters")
    return Seen(
        seq=entry.seq,
        account_id=entry.account_id,
        event_id=entry.event.event_id,
        time_ms=entry.event.event_time_ms,
        name=_text(body.get("eventName")),
        service=_text(body.get("serviceName")),
        rw=_text(body.get("eventRW")),
        error_code=_text(body.get("errorCode")),
        ip=_text(body.get("sourceIpAddress")),
        access_key_id=_text(identity.get("accessKeyId")),
        user_name=_text(identity.get("userName")),
        identity_type=_text(identity.get("type")),
        region=_text(body.get("acsRegion")) or "cn-hangzhou",
        params=params if isinstance(params, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class Statistics:
    """insightContext.statistics: rates per minute, durations in minutes."""

    insight: float
    insight_duration: int
    baseline: float
    baseline_duration: int
    insight_count: int

    def as_json(self) -> dict[str, Any]:
        return {
            "insight": round(self.insight, 3),
            "insightDuration": self.insight_duration,
            "baseline": round(self.baseline, 3),
            "baselineDuration": self.baseline_duration,
            "insightCount": self.insight_count,
        }


@dataclass(frozen=True, slots=True)
class Attribution:
    """One attribute's top values during the insight (and in the baseline, where known)."""

    attribute: str
    insight: Sequence[tuple[str, float]]
    baseline: Sequence[tuple[str, float]] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "insight": [{"value": v, "average": round(a, 3)} for v, a in self.insight],
            "baseline": [{"value": v, "average": round(a, 3)} for v, a in self.baseline],
        }


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts))).upper()


def insight_record(
    *,
    account_id: str,
    insight_type: str,
    insight_object: str,
    anchor: str,
    state: str,
    time_ms: int,
    region: str,
    statistics: Statistics,
    attributions: Sequence[Attribution],
    triggers: Sequence[str],
    explanation: str,
    trigger: Seen | None,
) -> StoredInsight:
    """One record; ``anchor`` names the occurrence (its first event, or its first minute)."""
    shared = derived_id(account_id, insight_type, insight_object, anchor)
    event_id = derived_id(shared, state)
    body: dict[str, Any] = {
        "eventVersion": "1",
        "eventType": "ActionTrailInsight",
        "eventCategory": "Insight",
        "eventId": event_id,
        "eventTime": format_wire_time(time_ms),
        "acsRegion": region,
        "recipientAccountId": account_id,
        "sharedEventId": shared,
        "insightDetails": {
            "state": state,
            "insightType": insight_type,
            "insightObject": insight_object,
            "insightContext": {
                "attributions": [a.as_json() for a in attributions],
                "statistics": statistics.as_json(),
            },
        },
        # Beyond ActionTrail's record: which events raised it, and why, in words.
        "triggeringEventIds": list(triggers),
        "explanation": explanation,
    }
    if trigger is not None:
        body["serviceName"] = trigger.service
        body["eventName"] = trigger.name
        body["sourceIpAddress"] = trigger.ip
        body["accessKeyId"] = trigger.access_key_id
    return StoredInsight(
        account_id=account_id,
        insight_id=event_id,
        shared_id=shared,
        insight_type=insight_type,
        state=state,
        event_time_ms=time_ms,
        region=region,
        insight_object=insight_object,
        body=orjson.dumps(body),
        service_name=trigger.service if trigger else "",
        event_name=trigger.name if trigger else "",
        source_ip=trigger.ip if trigger else "",
        access_key_id=trigger.access_key_id if trigger else "",
    )


def insight_pair(**kwargs: Any) -> list[StoredInsight]:
    """A point-in-time insight: its Start and End at the triggering event's time (one shared id)."""
    return [insight_record(state="Start", **kwargs), insight_record(state="End", **kwargs)]
